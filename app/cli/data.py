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

    aug = subparsers.add_parser("augment", help="write the training patches, exactly as training draws them")
    _add_data_arguments(aug)
    aug.add_argument("--out", type=Path, required=True, help="new or empty folder for the results")
    aug.add_argument("--config", type=Path, help="experiment JSON whose augmentation, patch size, split and seed "
                                                 "to use (default: SegStudio's defaults)")
    aug.add_argument("--pipeline", type=Path, help="pipeline JSON, replacing the experiment's augmentation")
    aug.add_argument("--patch-size", type=_positive_int, help="patch side in pixels (default: the experiment's)")
    aug.add_argument("--count", type=_positive_int, default=8, help="number of patches to write (default 8)")
    aug.add_argument("--epoch", type=_non_negative_int, default=0, help="the training epoch whose draws to write")
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
    parser.add_argument("--val-fraction", type=float, help="share of images in validation (default 0.2)")
    parser.add_argument("--seed", type=_non_negative_int, help="split seed (0 or more; default 0)")
    parser.add_argument("--mask-mode", help="auto, binary or indexed (default auto)")


def _load(args):
    from app.core.dataset import load_dataset
    from . import CommandError

    if len(args.data) > 2:
        raise CommandError("give one dataset folder, or an image stack and a label stack")
    source = args.data[0] if len(args.data) == 1 else tuple(args.data)
    return load_dataset(source, val_fraction=0.2 if args.val_fraction is None else args.val_fraction,
                        seed=args.seed or 0, mask_mode=args.mask_mode or "auto")


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
    from . import CommandError

    dataset = _load(args)
    stats = dataset.stats
    if args.json:
        report = stats.to_dict()
        report.update(root=str(dataset.root), layout=dataset.layout,
                      problems=[{"path": str(p.path), "reason": p.reason} for p in dataset.problems])
        print(json.dumps(report, indent=2))
        if not stats.count:
            raise CommandError(f"no usable samples in {dataset.root}")
        return 0
    print(f"{dataset.root} ({dataset.layout}): {stats.count} sample{'s' if stats.count != 1 else ''} "
          + ", ".join(f"{n} {k}" for k, n in stats.split_counts.items() if n))
    if stats.count:
        print(f"masks: {stats.label_mapping}")
        print("class fractions: " + ", ".join(f"class {i} {f:.1%}" for i, f in enumerate(stats.class_fractions)))
        print(f"sizes: {stats.min_size[1]}×{stats.min_size[0]} to {stats.max_size[1]}×{stats.max_size[0]}; "
              f"channels {', '.join(map(str, stats.channels))}; {', '.join(stats.dtypes)}")
        mean, std, units = ((stats.intensity_mean, stats.intensity_std, "file units") if stats.float_data else
                            (stats.normalised_mean, stats.normalised_std, "fractions of full range"))
        print("normalisation (train): mean " + ", ".join(f"{v:.4f}" for v in mean)
              + "; std " + ", ".join(f"{v:.4f}" for v in std) + f" ({units})")
    if dataset.problems:
        print(f"{len(dataset.problems)} problem(s):")
        for problem in dataset.problems:
            print(f"  {problem}")
    if not stats.count:
        raise CommandError(f"no usable samples in {dataset.root}")
    return 0


def cmd_augment(args) -> int:
    """The first ``--count`` patches training draws from ``--epoch`` on: the same training
    samples, order, pipeline, keys and crop as :mod:`app.core.patch_plan` (and the GUI preview)."""
    import re

    import numpy as np

    from app.core.augment import Pipeline
    from app.core.experiment_data import load_experiment_data
    from app.core.imageio import write_image
    from app.core.patch_plan import patches_in_epoch, training_patch, training_pipeline
    from . import CommandError, refuse_writing_inside, warn_about_problems

    config = _augment_config(args)
    if args.pipeline:
        try:
            config.augmentation = Pipeline.from_json(args.pipeline.read_text(encoding="utf-8-sig")).to_dict()
        except (ValueError, KeyError, TypeError) as exc:  # json's errors are ValueErrors without the file
            raise CommandError(f"{args.pipeline}: not a pipeline file ({exc})") from None
    config.validate()
    dataset = load_experiment_data(config)
    warn_about_problems(dataset)
    if not dataset.samples:
        raise CommandError(f"no readable samples in {dataset.root}")
    train = dataset.split("train")
    if not train:
        raise CommandError(f"no training samples in {dataset.root}: training draws its patches from the train "
                           "split only")
    for source in args.data:
        refuse_writing_inside(args.out, source, "dataset")
    _require_empty(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    pipeline, per_epoch = training_pipeline(config, train), patches_in_epoch(config, train)
    scale = 255 // max(1, dataset.num_classes - 1)
    for number in range(args.count):
        position = args.epoch * per_epoch + number
        epoch, index = divmod(position, per_epoch)
        sample, patch = training_patch(config, train, epoch, index, pipeline)
        image = patch.image if patch.image.shape[2] > 1 else patch.image[:, :, 0]
        as_png = image.dtype == np.uint8 or (image.dtype == np.uint16 and image.ndim == 2)
        stem = f"{number:03d}_e{epoch}_i{index}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", sample.name)
        write_image(args.out / f"{stem}_image{'.png' if as_png else '.tif'}", image)
        write_image(args.out / f"{stem}_mask.png", (patch.mask * scale).astype("uint8"))
    size = config.data.patch_size
    print(f"wrote {args.count} training patches ({size}×{size}) from epoch {args.epoch} on to {args.out}")
    return 0


def _augment_config(args):
    """The experiment whose training patches ``augment`` writes: ``--config`` (or the defaults)
    with the data and any data option given on the command line."""
    from app.core.config import ExperimentConfig
    from . import CommandError

    config = ExperimentConfig.load(args.config) if args.config else ExperimentConfig()
    if len(args.data) > 2:
        raise CommandError("give one dataset folder, or an image stack and a label stack")
    config.data.path = str(args.data[0].absolute())
    config.data.label_stack = str(args.data[1].absolute()) if len(args.data) == 2 else None
    for option, key in (("val_fraction", "val_fraction"), ("seed", "split_seed"), ("mask_mode", "mask_mode"),
                        ("patch_size", "patch_size")):
        if getattr(args, option) is not None:
            setattr(config.data, key, getattr(args, option))
    return config
