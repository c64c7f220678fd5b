"""``segstudio landscape``: loss surfaces around a checkpoint's weights (arrays and a PNG)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "landscape", help="loss along random filter-normalised directions around a checkpoint (npz + png)",
        description="Evaluate losses on a grid around a checkpoint's weights along one or two random "
                    "filter-normalised directions (Li et al. 2018), on a fixed batch of validation images; "
                    "writes landscape.npz and landscape.png.")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, help="dataset folder (default: the experiment's own data); "
                                             "split as the experiment was")
    p.add_argument("--losses", help="comma-separated losses, parameters as name:key=value, e.g. "
                                    "dice,bce,tversky:alpha=0.7 (default: the checkpoint's loss)")
    p.add_argument("--steps", type=int, default=21, help="grid points per direction (default 21)")
    p.add_argument("--span", type=float, default=1.0, help="the grid runs from -span to +span (default 1)")
    p.add_argument("--images", type=int, default=4, help="validation images in the fixed batch (default 4)")
    p.add_argument("--patch", type=int, help="centre crop side in pixels; 0 = whole images "
                                             "(default: the experiment's training patch size)")
    p.add_argument("--dims", type=int, choices=(1, 2), default=2, help="1-D curves or 2-D surfaces (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions and the image choice")
    p.add_argument("--batch-size", type=int, help="images per forward pass (default: all at once on a GPU, "
                                                   "about one 256x256 image per pass on the CPU)")
    p.add_argument("--out", type=Path, help="output folder (default: <run folder>/landscape)")
    p.add_argument("--force", action="store_true", help="replace landscape.npz / .png already in the folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=cmd_landscape)


def default_out(checkpoint: Path) -> Path:
    """``<run>/landscape`` for ``<run>/checkpoints/x.pt``, else ``landscape`` beside the checkpoint."""
    folder = checkpoint.resolve().parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "landscape"


class _Progress:
    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.tty:
            return
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (total - done)
        sys.stderr.write(f"\r  point {done}/{total}, {elapsed:.0f}s, about {left:.0f}s left   ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_landscape(args) -> int:
    import numpy as np

    from app.core.landscape import (build_losses, fixed_batch, needs_weight_map, random_directions, save_figure,
                                    slice_1d, slice_2d)
    from app.core.predictor import Predictor
    from app.core.training.device import configure_cpu_threads

    from . import CommandError, refuse_writing_inside

    if args.steps < 2 or args.steps > 401:
        raise CommandError(f"--steps must be 2..401, got {args.steps}")
    if not 0 < args.span < math.inf:
        raise CommandError(f"--span must be a number above 0, got {args.span}")
    if args.images < 1:
        raise CommandError(f"--images must be at least 1, got {args.images}")
    if args.patch is not None and args.patch < 0:
        raise CommandError(f"--patch must be 0 (whole images) or a size in pixels, got {args.patch}")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1, got {args.batch_size}")
    out = args.out or default_out(args.checkpoint)
    existing = [out / name for name in ("landscape.npz", "landscape.png") if (out / name).exists()]
    if existing and not args.force:  # checked before minutes of computing
        raise CommandError(f"{', '.join(str(p) for p in existing)} exist; add --force to replace them or "
                           "choose another --out")
    started = time.perf_counter()
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    if predictor.device.type == "cpu":
        configure_cpu_threads()
    config = predictor.config
    data = args.data or config.data.path  # None for an experiment without data: nothing to guard
    if data:
        refuse_writing_inside(out, data, "dataset")
    losses = build_losses(args.losses, config, predictor.num_classes)
    patch = config.data.patch_size if args.patch is None else (args.patch or None)
    batch = fixed_batch(config, args.data, count=args.images, patch=patch, seed=args.seed,
                        normaliser=predictor.normaliser, weight_map=needs_weight_map(losses) or None)
    if batch.images.shape[1] != predictor.in_channels:
        raise CommandError(f"the model takes {predictor.in_channels}-channel images, the data has "
                           f"{batch.images.shape[1]}")
    out.mkdir(parents=True, exist_ok=True)
    prepared = time.perf_counter() - started
    directions = random_directions(predictor.model, args.dims, seed=args.seed)
    meta = {"checkpoint": str(Path(args.checkpoint).resolve()), "model": config.model.name,
            "experiment": config.name, "seed": args.seed, "patch": patch or 0}
    points = args.steps ** args.dims
    print(f"{args.steps}{f'x{args.steps}' if args.dims == 2 else ''} grid ({points} points) of "
          f"{', '.join(losses)} on {batch.describe()}, device {predictor.device}", flush=True)
    fn = slice_1d if args.dims == 1 else slice_2d
    result = fn(predictor.model, batch, losses, directions[0] if args.dims == 1 else directions, args.steps,
                args.span, batch_size=args.batch_size, progress=_Progress(), meta=meta)
    npz = result.save(out / "landscape.npz")
    png = save_figure(result, out / "landscape.png")
    for name, centre, values in zip(result.losses, result.centre, result.values):
        finite = values[np.isfinite(values)]
        spread = (f"{finite.min():.6g} .. {finite.max():.6g} on the grid" if finite.size
                  else "no finite value on the grid")
        bad = values.size - finite.size
        print(f"  {name}: {centre:.6g} at the checkpoint's weights, {spread}"
              + (f"; {bad} of {values.size} points not finite (the loss overflowed: try a smaller --span)" if bad
                 else ""))
    seconds = result.meta["seconds"]
    print(f"computed in {seconds:.1f}s ({1e3 * seconds / points:.0f} ms per point; set-up {prepared:.1f}s)")
    print(f"wrote {npz} and {png}")
    return 0
