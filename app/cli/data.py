"""Data subcommands: ``demo-data``, ``dataset-info`` and ``augment``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo-data", help="write the built-in synthetic demo dataset to a folder")
    demo.add_argument("directory", type=Path, help="new or empty folder to write")
    demo.add_argument("--flavour", default="em", help="em (membranes, grayscale) or lesion (RGB); default em")
    demo.add_argument("--count", type=int, default=24, help="number of images (default 24)")
    demo.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    demo.add_argument("--val-fraction", type=float, default=0.2, help="share of images in val/ (default 0.2)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo_data)

    info = subparsers.add_parser("dataset-info", help="load a dataset and report its statistics and problems")
    _add_data_arguments(info)
    info.add_argument("--json", action="store_true", help="print the full statistics as JSON")
    info.set_defaults(func=cmd_dataset_info)

    aug = subparsers.add_parser("augment", help="write augmented samples, exactly as training would draw them")
    _add_data_arguments(aug)
    aug.add_argument("--out", type=Path, required=True, help="new or empty folder for the results")
    aug.add_argument("--pipeline", type=Path, help="pipeline JSON (default: SegStudio's recommended pipeline)")
    aug.add_argument("--count", type=_positive_int, default=8, help="number of samples to write (default 8)")
    aug.add_argument("--epoch", type=int, default=0, help="the training epoch whose draws to show")
    aug.set_defaults(func=cmd_augment)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not 0 or more")
    return value


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", type=Path,
                        help="dataset folder, or an image TIFF stack and its label stack")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="split seed (0 or more)")
    parser.add_argument("--mask-mode", default="auto", help="auto, binary or indexed")


def _load(args):
    from app.core.dataset import load_dataset
    from . import CommandError

    if len(args.data) > 2:
        raise CommandError("give one dataset folder, or an image stack and a label stack")
    source = args.data[0] if len(args.data) == 1 else tuple(args.data)
    return load_dataset(source, val_fraction=args.val_fraction, seed=args.seed, mask_mode=args.mask_mode)


def _require_empty(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; choose a new folder")


def cmd_demo_data(args) -> int:
    from app.core.demo_data import write_demo_dataset

    folder = write_demo_dataset(args.directory, flavour=args.flavour, count=args.count, size=args.size,
                                val_fraction=args.val_fraction, seed=args.seed)
    print(f"wrote {args.count} {args.flavour} samples ({args.size}×{args.size}) to {folder}")
    return 0


def cmd_dataset_info(args) -> int:
    dataset = _load(args)
    stats = dataset.stats
    if args.json:
        report = stats.to_dict()
        report.update(root=str(dataset.root), layout=dataset.layout,
                      problems=[{"path": str(p.path), "reason": p.reason} for p in dataset.problems])
        print(json.dumps(report, indent=2))
        return 0
    print(f"{dataset.root} ({dataset.layout}): {stats.count} sample{'s' if stats.count != 1 else ''} "
          + ", ".join(f"{n} {k}" for k, n in stats.split_counts.items() if n))
    print(f"masks: {stats.label_mapping}")
    print("class fractions: " + ", ".join(f"class {i} {f:.1%}" for i, f in enumerate(stats.class_fractions)))
    if stats.count:
        print(f"sizes: {stats.min_size[1]}×{stats.min_size[0]} to {stats.max_size[1]}×{stats.max_size[0]}; "
              f"channels {', '.join(map(str, stats.channels))}; {', '.join(stats.dtypes)}")
        print("normalisation (train): mean " + ", ".join(f"{v:.4f}" for v in stats.normalised_mean)
              + "; std " + ", ".join(f"{v:.4f}" for v in stats.normalised_std) + " (fractions of full range)")
    if dataset.problems:
        print(f"{len(dataset.problems)} problem(s):")
        for problem in dataset.problems:
            print(f"  {problem}")
    return 0


def cmd_augment(args) -> int:
    from app.core.augment import Pipeline, default_pipeline
    from app.core.imageio import write_image
    from . import CommandError, refuse_writing_inside, warn_about_problems

    try:
        pipeline = Pipeline.from_json(args.pipeline.read_text()) if args.pipeline else default_pipeline(args.seed)
    except (ValueError, KeyError, TypeError) as exc:  # json's errors are ValueErrors without the file
        raise CommandError(f"{args.pipeline}: not a pipeline file ({exc})") from None
    dataset = _load(args)
    warn_about_problems(dataset)
    if not dataset.samples:
        raise CommandError(f"no readable samples in {dataset.root}")
    for source in args.data:
        refuse_writing_inside(args.out, source, "dataset")
    _require_empty(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    scale = 255 // max(1, dataset.num_classes - 1)
    for index in range(args.count):
        sample = dataset.samples[index % len(dataset.samples)]
        result = pipeline(sample.image, sample.mask, key=(args.epoch, index))
        image = result.image if result.image.shape[2] > 1 else result.image[:, :, 0]
        write_image(args.out / f"{index:03d}_{sample.name}_image.png", image)
        write_image(args.out / f"{index:03d}_{sample.name}_mask.png", (result.mask * scale).astype("uint8"))
    print(f"wrote {args.count} augmented samples to {args.out}")
    return 0
