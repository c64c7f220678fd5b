"""``segstudio train``: train an experiment from the command line through the same engine."""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model (on the built-in demo data unless --data is given)")
    p.add_argument("--config", type=Path, help="experiment JSON; the options below override it")
    p.add_argument("--data", type=Path, help="dataset folder")
    p.add_argument("--model")
    p.add_argument("--loss")
    p.add_argument("--optimizer")
    p.add_argument("--lr", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=("auto", "on", "off"),
                   help="mixed precision: auto = float16 on CUDA, bfloat16 on CPUs with native support; off = float32")
    p.add_argument("--seed", type=int)
    p.add_argument("--time-limit", type=float, help="seconds of training")
    p.add_argument("--landscape-every", type=int, metavar="N",
                   help="store a loss-surface slice every N epochs (for the Loss landscape panel; 0 = off)")
    p.add_argument("--landscape-losses", metavar="LOSSES",
                   help="losses of those slices, e.g. dice,bce,tversky:alpha=0.7 (default: the training loss)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run where it stopped (only --epochs, --time-limit and --lr can change)")
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder (default: a new one in the user data folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def build_config(args):
    """The experiment: the config file (or defaults) with the command-line overrides applied."""
    from app.core.config import ExperimentConfig

    data = ExperimentConfig.load(args.config).to_dict() if args.config else ExperimentConfig().to_dict()
    overrides = {
        ("data", "path"): str(args.data) if args.data else None,
        ("model", "name"): args.model, ("loss", "name"): args.loss, ("optimizer", "name"): args.optimizer,
        ("optimizer", "lr"): args.lr, ("training", "epochs"): args.epochs,
        ("training", "batch_size"): args.batch_size, ("data", "patch_size"): args.patch_size,
        ("training", "device"): args.device, ("training", "seed"): args.seed,
        ("training", "mixed_precision"): args.precision,
        ("training", "time_limit"): args.time_limit,
        ("training", "landscape_every"): args.landscape_every,
        ("training", "landscape_losses"): args.landscape_losses,
    }
    for (section, key), value in overrides.items():
        if value is not None:
            if key == "name" and data[section]["name"] != value:
                data[section]["params"] = {}
            data[section][key] = value
    for key in ("path", "label_stack"):  # as absolute paths: the run can be resumed from any folder
        if data["data"].get(key):
            data["data"][key] = str(Path(data["data"][key]).expanduser().absolute())
    return ExperimentConfig.from_dict(data)


class ConsoleProgress:
    """A one-line progress bar on stderr and one summary line per epoch on stdout."""

    def __init__(self, quiet: bool):
        self.quiet = quiet or not sys.stderr.isatty()

    def __call__(self, event) -> None:
        from app.core.training.events import BatchFinished, EpochFinished, Failed, LandscapeSaved, TrainingWarning

        if isinstance(event, BatchFinished) and not self.quiet:
            done = int(30 * event.step / event.steps)
            sys.stderr.write(f"\repoch {event.epoch} [{'#' * done}{'.' * (30 - done)}] {event.step}/{event.steps} "
                             f"loss {event.loss:.4f} {event.images_per_second:.1f} img/s ")
            sys.stderr.flush()
        elif isinstance(event, EpochFinished):
            if not self.quiet:
                sys.stderr.write("\r" + " " * 90 + "\r")
            val = ("" if event.val_loss is None else
                   f" | val loss {event.val_loss:.4f} acc {event.val_pixel_accuracy:.4f} "
                   f"IoU {event.val_iou:.4f} Dice {event.val_dice:.4f}"
                   + ("" if event.val_adapted_rand_error is None else f" Rand {event.val_adapted_rand_error:.3f}"))
            print(f"epoch {event.epoch}: train loss {event.train_loss:.4f} acc {event.train_pixel_accuracy:.4f}"
                  f"{val} | lr {event.lr:.3g} | {event.seconds:.1f}s", flush=True)
        elif isinstance(event, LandscapeSaved):
            print(f"epoch {event.epoch}: loss-surface slice saved in {event.path} ({event.seconds:.1f}s)", flush=True)
        elif isinstance(event, TrainingWarning):
            print(f"warning: {event.message}", file=sys.stderr)
        elif isinstance(event, Failed) and not self.quiet:
            sys.stderr.write("\n")


def cmd_train(args) -> int:
    from app.core.training.engine import Trainer, TrainingControl
    from app.core.training.run_folder import clear_unused, holds_nothing

    from . import CommandError

    existed = True  # the run folder was there before this command (resumed, or given by --out)
    if args.resume:
        fixed = [f"--{k.replace('_', '-')}" for k in ("config", "data", "model", "loss", "optimizer",
                                                      "batch_size", "patch_size", "device", "precision", "seed",
                                                      "out")
                 if getattr(args, k) is not None]
        if fixed:
            raise CommandError(f"--resume continues a run as it was; only --epochs, --time-limit and --lr can "
                               f"change (not {', '.join(fixed)})")
        from app.core.training.continuation import plan_continuation

        try:  # the same checks as the Training panel's Continue run
            plan = plan_continuation(args.resume, args.epochs, args.time_limit, args.lr)
        except ValueError as exc:
            raise CommandError(f"cannot resume {args.resume}: {exc}") from None
        if plan.diverged and args.lr is None:
            print(f"warning: this run ended with: {plan.failure}\nit continues at the same learning rate "
                  f"({plan.config.optimizer.lr:g}); give --lr to lower it", file=sys.stderr)
        trainer = Trainer(plan.config, args.resume, listeners=[ConsoleProgress(args.quiet)], resume=True)
    else:
        from app.core.training.distributed import DistributedContext

        config = build_config(args)
        if config.data.path and not Path(config.data.path).exists():  # before a run folder is made for it
            raise CommandError(f"{config.data.path} does not exist")
        from app.core.training.device import resolve_device

        try:  # a GPU that is not there: refused before a (failed) run folder is left behind
            resolve_device(config.training.device)
        except (ValueError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        if DistributedContext.from_env().is_main and args.out and args.out.is_dir():
            if not holds_nothing(args.out):
                resumable = " or --resume it" if (args.out / "config.json").exists() else ""
                raise FileExistsError(f"{args.out} is not empty; choose a new run folder{resumable}")
            clear_unused(args.out, remove_folder=False)  # left by a run aborted before it wrote anything
        existed = args.out is not None and args.out.exists()
        trainer = Trainer(config, args.out, listeners=[ConsoleProgress(args.quiet)])
    control: TrainingControl = trainer.control

    def on_interrupt(signum, frame):  # first Ctrl-C: finish the step, save, stop; second: abort
        print("\nstopping after this step (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        summary = trainer.run()
    except KeyboardInterrupt:  # aborted: a folder with nothing written in it is not left behind
        if trainer.ctx.is_main:
            clear_unused(trainer.folder.path, remove_folder=not existed)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if not trainer.ctx.is_main:
        return 0
    print(f"run folder: {trainer.folder.path}")
    print(finished_line(summary))
    return 0


def finished_line(summary: dict) -> str:
    """The last line of ``train``: how the run ended, its best epoch (if one finished), the time."""
    best = (f"best {summary['best_metric']} {summary['best_value']} at epoch {summary['best_epoch']}"
            if summary.get("best_value") is not None else "no epoch finished")
    return f"finished ({summary['reason']}): {best}; {summary['wall_seconds']}s on {summary['device']}"
