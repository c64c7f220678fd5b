"""``segstudio review-new`` and ``segstudio review-export``: clinician reviews without the window."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    n = subparsers.add_parser("review-new", help="start a review of predicted masks (from folders or a checkpoint)")
    n.add_argument("review_dir", type=Path, metavar="REVIEW_DIR", help="new or empty folder for the review")
    n.add_argument("--images", type=Path, required=True, help="folder of the images to review")
    source = n.add_mutually_exclusive_group(required=True)
    source.add_argument("--masks", type=Path, help="folder of predicted masks, paired with the images by file stem")
    source.add_argument("--checkpoint", type=Path, help="a run's checkpoint (or its run folder: its best.pt): "
                                                        "predict the images now")
    n.add_argument("--device", default="auto", help="with --checkpoint: auto, cpu, cuda or cuda:N")
    n.add_argument("--cleanup", action="append", default=[], metavar="KEY=VALUE",
                   help="a watershed clean-up setting (repeatable), e.g. foreground_fraction=0.3; the others are "
                        "the run's (with --checkpoint) or the defaults (see review-cleanup)")
    n.set_defaults(func=cmd_review_new)

    e = subparsers.add_parser("review-export", help="export a review's accepted and corrected masks and its report")
    e.add_argument("review_dir", type=Path, metavar="REVIEW_DIR")
    e.add_argument("--out", type=Path, required=True, help="folder for the masks, review_report.csv and "
                                                           "review_summary.html")
    e.add_argument("--format", choices=("png", "tiff"), default="png", help="mask format (default png, 0/255)")
    e.add_argument("--overwrite", action="store_true", help="replace files of an earlier export in --out")
    e.set_defaults(func=cmd_review_export)


def _progress(done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"  {done}/{total}", flush=True)


def cmd_review_new(args) -> int:
    from app.core.review import ReviewStore

    from .review_settings import cleanup_changes

    cleanup = cleanup_changes(args.cleanup)
    if args.checkpoint is not None and args.checkpoint.is_dir():  # a run folder: its best checkpoint
        args.checkpoint = args.checkpoint / "checkpoints" / "best.pt"
    if args.checkpoint is not None:
        store = ReviewStore.create_from_checkpoint(args.review_dir, args.checkpoint, args.images, device=args.device,
                                                   watershed=cleanup, progress=_progress)
    else:
        store = ReviewStore.create_from_folders(args.review_dir, args.images, args.masks, watershed=cleanup,
                                                progress=_progress)
    try:
        for problem in store.record.problems:
            print(f"skipped {problem['path']}: {problem['reason']}")
        count = len(store.cases)
        print(f"review of {count} case{'s' if count != 1 else ''} created in {store.folder}")
    finally:
        store.close()
    return 0


def cmd_review_export(args) -> int:
    from app.core.review import ReviewStore
    from app.core.review.export import export_review

    store = ReviewStore.open(args.review_dir, read_only=True)  # exporting never changes the review
    result = export_review(store, args.out, args.format, overwrite=args.overwrite)
    for problem in result.problems:
        print(f"not exported: {problem}")
    for note in result.notes:
        print(f"note: {note}")
    counts = store.record.counts()
    print(f"exported {len(result.masks)} masks ({counts['accepted']} accepted, {counts['corrected']} corrected), "
          f"{result.report.name} and {result.summary.name} into {result.folder}")
    return 1 if result.problems else 0  # an approved mask is missing: the export is incomplete
