"""``segstudio plot`` and ``segstudio runs-plot``: the Training panel's and the Runs panel's plots
as PNG images without the window, drawn off screen by the same widgets."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("plot", help="a run's training curves as PNG (the Training panel's per-epoch plots)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the PNG image to write")
    p.add_argument("--size", default="1800x600", metavar="WxH", help="image size in pixels (default 1800x600)")
    p.add_argument("--log-loss", action="store_true", help="a logarithmic loss axis")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_plot)

    r = subparsers.add_parser("runs-plot", help="one metric of several runs on one plot, as PNG (the Runs panel's "
                                                "curves)")
    r.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    r.add_argument("--out", type=Path, required=True, metavar="FILE", help="the PNG image to write")
    r.add_argument("--metric", help="a history column, e.g. val_dice, val_loss, train_loss, val_pixel_accuracy, lr "
                                    "(default: val_dice, else val_loss, else train_loss)")
    r.add_argument("--width", type=int, default=1400, help="image width in pixels (default 1400)")
    r.add_argument("--log", action="store_true", help="a logarithmic y axis")
    r.add_argument("--force", action="store_true", help="replace FILE if it exists")
    r.set_defaults(func=cmd_runs_plot)


def offscreen_application():
    """The QApplication, made for drawing off screen when there is none (no window is shown)."""
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QApplication(["segstudio"])
        qInstallMessageHandler(_quiet_offscreen)
    return app


def _quiet_offscreen(mode, context, message: str) -> None:
    """Qt's messages on stderr, less the off-screen platform's note that it ignores size hints."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def _check_out(out: Path, force: bool) -> None:
    from . import CommandError

    if out.suffix.lower() != ".png":
        raise CommandError(f"{out}: the image is written as PNG; give a file name ending in .png")
    if out.exists() and not force:
        raise CommandError(f"{out} exists; add --force to replace it")
    if not out.parent.is_dir():
        raise CommandError(f"folder {out.parent} does not exist")


def _size(text: str) -> tuple[int, int]:
    from . import CommandError

    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match or not (900 <= int(match.group(1)) <= 10000 and 300 <= int(match.group(2)) <= 10000):
        raise CommandError(f"--size {text!r}: give WIDTHxHEIGHT, 900 to 10000 pixels wide (three plots side by "
                           "side) and 300 to 10000 high, e.g. 1800x600")
    return int(match.group(1)), int(match.group(2))


def _check_run(run_dir: Path) -> None:
    from app.core.runs import is_run_folder

    from . import CommandError

    if not is_run_folder(run_dir):
        raise CommandError(f"{run_dir} is not a run folder (no config.json, history.csv or train.log)")


def run_history(run_dir: Path) -> list:
    """The run's history.csv as the epoch events the Training panel draws."""
    from app.core.training.continuation import read_epoch_events

    from . import CommandError

    _check_run(run_dir)
    history = read_epoch_events(run_dir)
    if not history:
        raise CommandError(f"{run_dir} has no finished epoch yet (history.csv is missing or empty)")
    return history


def cmd_plot(args) -> int:
    width, height = _size(args.size)
    _check_out(args.out, args.force)
    history = run_history(args.run_dir)
    app = offscreen_application()

    from app.ui.training_export import write_png
    from app.ui.training_plots import TrainingPlots
    from PySide6.QtGui import QPalette

    palette = app.palette()
    plots = TrainingPlots(palette, steps=False)
    try:
        plots.set_log_scale(args.log_loss)
        plots.draw_epochs(history)
        write_png(args.out, plots.render_image(width, height, palette.color(QPalette.ColorRole.Base)))
    finally:
        plots.deleteLater()
    print(f"wrote {args.out} ({len(history)} epoch{'s' if len(history) != 1 else ''}, {width}x{height})")
    return 0


def cmd_runs_plot(args) -> int:
    from app.core.runs import read_curves

    from . import CommandError

    if not 200 <= args.width <= 10000:
        raise CommandError(f"--width {args.width}: give 200 to 10000 pixels")
    _check_out(args.out, args.force)
    for run_dir in args.run_dirs:
        _check_run(run_dir)
    paths = [Path(run_dir).resolve() for run_dir in args.run_dirs]
    twice = sorted({str(path) for path in paths if paths.count(path) > 1})
    if twice:
        raise CommandError(f"{', '.join(twice)} is given twice")
    names = [path.name for path in paths]
    labels = [f"{path.parent.name}/{path.name}" if names.count(path.name) > 1 else path.name for path in paths]
    series = []
    for label, path in zip(labels, paths):
        curves = read_curves(path)
        if curves and "epoch" not in curves:  # damage is named, not only shown as a missing curve
            print(f"warning: {path / 'history.csv'} is damaged (it has no epoch column); left out", file=sys.stderr)
            curves = {}
        series.append((label, curves))
    offscreen_application()

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.core.atomic import atomic_write_bytes
    from app.ui.runs_curves import MAX_CURVES, RunsCurvesPlot

    if len(series) > MAX_CURVES:
        raise CommandError(f"{len(series)} runs: at most {MAX_CURVES} can be told apart on one plot")
    plot = RunsCurvesPlot()
    plot.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    plot.resize(args.width, args.width * 3 // 5)  # laid out as on screen: the legend under the plot
    plot.show()
    try:
        plot.set_runs(series)
        if not any(plot.has_points(metric) for metric in plot.metrics()):
            raise CommandError("none of these runs has finished an epoch (no values in their history.csv)")
        if args.metric:
            plot.set_metric(args.metric)
            if not plot.has_points(args.metric):
                raise CommandError(f"none of these runs recorded a value of {args.metric}")
        plot.log_check.setChecked(args.log)
        QApplication.processEvents()
        atomic_write_bytes(args.out, plot.png_bytes(args.width))
        metric, missing = plot.current_metric(), plot.note_label.text()
    finally:
        plot.close()
        plot.deleteLater()
    print(f"wrote {args.out} ({metric} of {len(series)} run{'s' if len(series) != 1 else ''})")
    if missing:
        print(f"note: {missing}")
    return 0
