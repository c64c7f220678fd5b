"""``segstudio predict`` and ``segstudio evaluate``: use a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict masks for an image or a folder of images")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--input", type=Path, required=True, help="an image, or a folder of images")
    p.add_argument("--out", type=Path, required=True, help="new or empty folder for the masks")
    p.add_argument("--watershed", action="store_true", help="also write the watershed-cleaned masks")
    p.add_argument("--overlay", action="store_true", help="also write the mask drawn over the image")
    p.add_argument("--probabilities", action="store_true",
                   help="also write each foreground probability map (8-bit NAME_probability.png; binary models): "
                        "a review of these masks then cleans up the map, as --watershed does")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

    e = subparsers.add_parser("evaluate", help="score a checkpoint on a dataset (JSON on stdout)")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--split", default="val", help="train, val or test (default val)")
    e.add_argument("--per-image", action="store_true", help="add one row per image")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_evaluate)


def _mask_png(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """0/255 for binary models, class indices for multi-class ones."""
    return (labels > 0).astype(np.uint8) * 255 if num_classes <= 2 else labels.astype(np.uint8)


def probability_png(probability: np.ndarray) -> np.ndarray:
    """A foreground probability (0..1) as 8-bit 0..255, as reviews store them."""
    return np.clip(probability * 255 + 0.5, 0, 255).astype(np.uint8)


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from app.core.arrays import as_hwc, dtype_range

    img = as_hwc(image).astype(np.float32)
    img = img / max(1.0, dtype_range(image.dtype)[1]) * 255 if image.dtype != np.uint8 else img
    rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
    colour = np.array([255, 64, 64], np.float32)
    fg = mask > 0
    rgb[fg] = 0.6 * rgb[fg] + 0.4 * colour
    return np.clip(rgb, 0, 255).astype(np.uint8)


def cmd_predict(args) -> int:
    from app.core.imageio import ImageReadError, is_image_file, read_image, write_image
    from app.core.predictor import Predictor
    from . import CommandError, refuse_writing_inside

    source = args.input.resolve()
    if not source.exists():
        raise CommandError(f"{args.input} does not exist")
    folder = source if source.is_dir() else source.parent
    refuse_writing_inside(args.out, source, "input")
    out = args.out.resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{args.out} is not empty; choose a new folder")
    images = sorted(p for p in source.iterdir() if is_image_file(p)) if source.is_dir() else [source]
    if not images:
        raise CommandError(f"no images in {args.input}")
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    if args.probabilities and predictor.num_classes > 2:
        raise CommandError(f"--probabilities is for binary models; this one predicts {predictor.num_classes} "
                           "classes")
    out.mkdir(parents=True, exist_ok=True)
    suffixes = ([""] + ["_watershed"] * args.watershed + ["_overlay"] * args.overlay
                + ["_probability"] * args.probabilities)
    failed = []
    for path, name in zip(images, output_names(images, suffixes)):
        try:
            image = read_image(path)
            prediction = predictor.predict(image)
        except (ImageReadError, ValueError, RuntimeError) as exc:  # one bad image does not stop the batch
            reason = str(exc) if path.name in str(exc) else f"{path.name}: {exc}"
            print(f"skipped {reason}")
            failed.append({"path": str(path), "reason": str(exc)})
            continue
        write_image(out / f"{name}.png", _mask_png(prediction.labels, predictor.num_classes))
        if args.watershed:
            cleaned = predictor.postprocess(prediction, keep_steps=False)
            write_image(out / f"{name}_watershed.png", cleaned.mask * np.uint8(255))
        if args.overlay:
            write_image(out / f"{name}_overlay.png", _overlay(image, prediction.labels))
        if args.probabilities:
            write_image(out / f"{name}_probability.png", probability_png(prediction.probabilities[min(1, len(prediction.probabilities) - 1)]))
        print(f"{path.name} -> {out / (name + '.png')}")
    from app.core.atomic import atomic_write_json

    atomic_write_json(out / "predictions.json", {"checkpoint": str(Path(args.checkpoint).resolve()),
                                                 "model": predictor.config.model.name,
                                                 "experiment": predictor.config.name, "images": str(folder),
                                                 "postprocess": predictor.watershed_params.to_dict(),
                                                 "skipped": failed})
    print(f"predicted {len(images) - len(failed)} of {len(images)} images into {out}"
          + (f"; {len(failed)} skipped (listed above and in predictions.json)" if failed else ""))
    return 1 if failed else 0


def output_names(images: list[Path], suffixes: list[str]) -> list[str]:
    """A base name per input whose outputs (``name + suffix + ".png"``) collide with no other
    input's, ignoring case (as Windows and macOS do): the stem, else the whole file name when
    another input shares the stem (a.png, a.tif), else a numbered variant."""
    from collections import Counter

    stems = Counter(p.stem.lower() for p in images)
    taken: set[str] = {"predictions.json"}
    names = []
    for path in images:
        base = path.stem if stems[path.stem.lower()] == 1 else path.name
        name, n = base, 1
        while any(f"{name}{suffix}.png".lower() in taken for suffix in suffixes):
            n += 1
            name = f"{base}-{n}"
        taken.update(f"{name}{suffix}.png".lower() for suffix in suffixes)
        names.append(name)
    return names


def cmd_evaluate(args) -> int:
    from app.core.metrics import ScoreAccumulator, adapted_rand_error, instance_labels
    from app.core.training.engine import load_experiment_data
    from app.core.predictor import Predictor
    from . import CommandError, warn_about_problems

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    dataset = load_experiment_data(predictor.config, args.data)  # the split the model was trained with
    warn_about_problems(dataset)
    samples = dataset.split(args.split)
    if not samples:
        raise CommandError(f"{args.data} has no {args.split} samples")
    classes = max(2, predictor.num_classes)
    if dataset.num_classes > classes:
        raise CommandError(f"the masks in {args.data} have {dataset.num_classes} classes but the model predicts "
                           f"{classes}; evaluate it on data labelled like its training data")
    raw, cleaned = ScoreAccumulator(classes), ScoreAccumulator(classes)
    rows, rand_raw, rand_clean = [], [], []
    for sample in samples:
        try:
            prediction = predictor.predict(sample.image)
        except (ValueError, RuntimeError) as exc:
            raise CommandError(f"{sample.name}: {exc}") from None
        post = predictor.postprocess(prediction, keep_steps=False)
        truth = instance_labels(sample.mask)
        r_raw = adapted_rand_error(instance_labels(prediction.labels), truth)
        r_clean = adapted_rand_error(post.labels, truth)
        rand_raw.append(r_raw)
        rand_clean.append(r_clean)
        s_raw, s_clean = raw.add(prediction.labels, sample.mask), cleaned.add(post.mask, (sample.mask > 0))
        rows.append({"name": sample.name, "pixel_accuracy": s_raw.pixel_accuracy, "iou": s_raw.iou,
                     "dice": s_raw.dice, "adapted_rand_error": r_raw,
                     "watershed": {"pixel_accuracy": s_clean.pixel_accuracy, "iou": s_clean.iou,
                                   "dice": s_clean.dice, "adapted_rand_error": r_clean}})

    def block(acc, rand):
        micro = acc.micro()
        return {"pixel_accuracy": micro.pixel_accuracy, "iou": micro.iou, "dice": micro.dice,
                "adapted_rand_error": float(np.mean(rand))}

    report = {"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split,
              "images": len(samples), "before_watershed": block(raw, rand_raw),
              "after_watershed": block(cleaned, rand_clean)}
    if args.per_image:
        report["per_image"] = rows
    print(json.dumps(report, indent=2))
    return 0
