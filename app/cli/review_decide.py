"""``segstudio review-status``, ``review-decide`` and ``review-correct``: a review's decisions
and corrections without the window, through the same review store the Review panel uses."""

from __future__ import annotations

import json
from pathlib import Path

DECISION_STATES = ("accepted", "rejected", "needs_edit", "unreviewed")


def register(subparsers) -> None:
    s = subparsers.add_parser("review-status", help="list a review's cases and what was decided for each")
    s.add_argument("review_dir", type=Path, metavar="REVIEW_DIR")
    s.add_argument("--state", choices=("unreviewed", "accepted", "rejected", "needs_edit", "corrected"),
                   help="only the cases in this state")
    s.add_argument("--json", action="store_true", help="print the cases as JSON (with their histories)")
    s.set_defaults(func=cmd_review_status)

    d = subparsers.add_parser("review-decide", help="accept, reject or set aside cases of a review")
    d.add_argument("review_dir", type=Path, metavar="REVIEW_DIR")
    d.add_argument("cases", nargs="+", metavar="CASE", help="case names (as review-status lists them)")
    d.add_argument("--state", required=True, choices=DECISION_STATES, help="the decision")
    d.add_argument("--reviewer", required=True, help="the name recorded with the decision")
    d.add_argument("--reason", default="", help="with --state rejected: one of the review's reasons "
                                                "(default: none recorded)")
    d.add_argument("--comment", help="a comment stored with the case")
    d.add_argument("--mask", choices=("prediction", "watershed"),
                   help="which mask an accepted case exports: the prediction (default) or its watershed clean-up; "
                        "a corrected case exports its correction")
    d.set_defaults(func=cmd_review_decide)

    c = subparsers.add_parser("review-correct", help="store a corrected mask for a case (or drop its correction)")
    c.add_argument("review_dir", type=Path, metavar="REVIEW_DIR")
    c.add_argument("case", metavar="CASE")
    c.add_argument("--reviewer", required=True, help="the name recorded with the correction")
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("--mask", type=Path, metavar="FILE", help="the corrected mask, the image's size "
                                                                 "(foreground above half the range); only read")
    what.add_argument("--revert", action="store_true", help="drop the case's correction")
    c.set_defaults(func=cmd_review_correct)


def _check_cases(store, names: list[str]) -> None:
    from . import CommandError

    known = {case.name for case in store.cases}
    missing = [name for name in names if name not in known]
    if missing:
        examples = ", ".join(sorted(known)[:5]) + (" ..." if len(known) > 5 else "")
        raise CommandError(f"{store.folder} has no case {', '.join(repr(n) for n in missing)} (cases: {examples})")


def cmd_review_status(args) -> int:
    from app.core.review import ReviewStore, state_label
    from . import aligned_table

    store = ReviewStore.open(args.review_dir, read_only=True)
    cases = [case for case in store.cases if args.state is None or case.state == args.state]
    if args.json:
        print(json.dumps([case.to_dict() for case in cases], indent=1))
        return 0
    counts = store.record.counts()
    print(f"{store.folder}: {len(store.cases)} cases, " + ", ".join(f"{n} {state_label(s).lower()}"
                                                                   for s, n in counts.items() if n))
    rows = [("case", "state", "mask", "reviewer", "decided", "reason / comment")]
    for case in cases:
        mask = "corrected" if case.corrected else case.variant
        note = " / ".join(part for part in (case.reason, case.comment) if part)
        rows.append((case.name, state_label(case.state), mask, case.reviewer or "-", case.decided_at or "-", note))
    print(aligned_table(rows))
    return 0


def cmd_review_decide(args) -> int:
    from app.core.review import ReviewStore
    from app.core.review.case_data import mask_stats
    from . import CommandError

    store = ReviewStore.open(args.review_dir)
    try:
        _check_cases(store, args.cases)
        if args.reason and args.state != "rejected":
            raise CommandError("--reason goes with --state rejected")
        if args.reason and args.reason not in store.record.reasons:
            raise CommandError(f"{args.reason!r} is not one of this review's reasons: "
                               f"{', '.join(store.record.reasons)}")
        corrected = [name for name in args.cases if store.case(name).corrected]
        if args.mask and corrected:
            raise CommandError(f"{', '.join(corrected)} {'has a correction' if len(corrected) == 1 else 'have corrections'}"
                               f", which is what an accepted corrected case exports; drop it first "
                               f"(review-correct --revert) to export the {args.mask} instead")
        variant = args.mask or "prediction"
        for name in args.cases:
            data = store.load_case(name)
            stats = mask_stats(data.corrected if data.corrected is not None
                               else data.variant_mask(variant, store.watershed_params))
            case = store.decide(name, args.state, args.reviewer, reason=args.reason, comment=args.comment,
                                variant=variant, stats=stats)
            reason = f" ({case.reason})" if case.reason else ""
            print(f"{name}: {args.state}{reason}")
    finally:
        store.close()
    return 0


def cmd_review_correct(args) -> int:
    from app.core.review import ReviewStore
    from app.core.review.case_data import binary_mask, read_mask_checked

    store = ReviewStore.open(args.review_dir)
    try:
        _check_cases(store, [args.case])
        if args.revert:
            if not store.case(args.case).corrected:
                print(f"{args.case}: has no correction; nothing changed")
                return 0
            case = store.revert_correction(args.case, args.reviewer)
            print(f"{args.case}: correction dropped; the case is {case.state} again")
            return 0
        data = store.load_case(args.case)
        mask = binary_mask(read_mask_checked(args.mask, data.image.shape[:2]))
        case = store.save_correction(args.case, mask, args.reviewer)
        objects = f"{case.objects} object{'s' if case.objects != 1 else ''}"
        print(f"{args.case}: corrected ({case.area} foreground pixels, {objects}), "
              f"stored as {store.folder / case.corrected}")
    finally:
        store.close()
    return 0
