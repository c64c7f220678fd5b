"""``segstudio predict`` and ``segstudio evaluate``: use a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path


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


def cmd_predict(args) -> int:
    from app.core.batch_predict import BatchError, BatchOutputs, batch_inputs, predict_folder
    from app.core.predictor import Predictor
    from . import CommandError

    try:
        batch_inputs(args.input, args.out)  # refused before the model is loaded
        predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
        outputs = BatchOutputs(args.watershed, args.overlay, args.probabilities)

        def report(path: Path, mask: Path | None, reason: str) -> None:
            print(f"{path.name} -> {mask}" if mask is not None else f"skipped {reason}")

        result = predict_folder(predictor, args.checkpoint, args.input, args.out, outputs, on_image=report)
    except BatchError as exc:
        raise CommandError(str(exc)) from None
    failed = result.skipped
    print(f"predicted {len(result.written)} of {result.total} images into {result.out}"
          + (f"; {len(failed)} skipped (listed above and in predictions.json)" if failed else ""))
    return 1 if failed else 0


def cmd_evaluate(args) -> int:
    from app.core.metrics import ScoreAccumulator, adapted_rand_error, instance_labels, mean_defined
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
        r_raw, r_clean = mean_defined([r_raw]), mean_defined([r_clean])  # null in JSON: no true object
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
                "adapted_rand_error": mean_defined(rand)}  # over the images with true objects

    report = {"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split,
              "images": len(samples), "before_watershed": block(raw, rand_raw),
              "after_watershed": block(cleaned, rand_clean)}
    if args.per_image:
        report["per_image"] = rows
    print(json.dumps(report, indent=2))
    return 0
