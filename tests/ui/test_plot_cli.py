"""``segstudio plot`` and ``segstudio runs-plot`` (app.cli.plots): the panels' plots as PNG files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.cli import main
from app.cli.plots import run_history
from app.core.training.run_folder import HISTORY_COLUMNS
from app.ui.runs_curves import run_colour
from app.ui.training_plots import COLOURS

from ..core.helpers import one_line_error


def write_run(folder, epochs: int, validated: bool = True, start: float = 1.0):
    """A run folder with config.json and a history.csv of falling losses and rising scores."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"name": folder.name, "model": {"name": "unet"}}))
    lines = [",".join(HISTORY_COLUMNS)]
    for epoch in range(1, epochs + 1):
        loss, score = start / epoch, 0.01 * epoch - 0.1 * (start - 1)
        val = [f"{loss * 1.1:.4f}", f"{0.8 + score:.4f}", f"{0.7 + score:.4f}",
               f"{0.75 + score:.4f}"] if validated else ["", "", "", ""]
        row = {"epoch": str(epoch), "train_loss": f"{loss:.4f}", "train_pixel_accuracy": f"{0.7 + 0.02 * epoch:.4f}",
               "val_loss": val[0], "val_pixel_accuracy": val[1], "val_iou": val[2], "val_dice": val[3],
               "lr": "0.001", "seconds": "2.5", "val_adapted_rand_error": f"{0.3 - score:.4f}" if validated else ""}
        lines.append(",".join(row[column] for column in HISTORY_COLUMNS))
    (folder / "history.csv").write_text("\n".join(lines) + "\n")
    return folder


def colour_pixels(path, colour: str) -> int:
    """How many pixels of the PNG are within a small distance of ``colour`` (#rrggbb)."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = pixels[:, :image.width() * 3].reshape(-1, 3).astype(int)
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - rgb).sum(axis=1) < 30).sum())


def test_run_history_reads_every_epoch_as_the_panel_draws_it(tmp_path):
    history = run_history(write_run(tmp_path / "run", 4, validated=False))
    assert [e.epoch for e in history] == [1, 2, 3, 4]
    assert [e.train_loss for e in history] == [1.0, 0.5, 0.3333, 0.25]
    assert history[2].train_pixel_accuracy == pytest.approx(0.76)
    assert all(e.val_loss is None and e.val_dice is None for e in history)


def test_plot_draws_the_training_panels_curves(qtbot, tmp_path, capsys):
    run = write_run(tmp_path / "run", 6)
    out = tmp_path / "curves.png"
    assert main(["plot", str(run), "--out", str(out), "--size", "1500x500"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (6 epochs, 1500x500)"
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1500, 500)
    for name in ("train", "val", "iou", "dice"):  # every per-epoch curve is drawn
        assert colour_pixels(out, COLOURS[name]) > 300, name

    # a run without validation draws its training curves only; an existing file needs --force
    bare = write_run(tmp_path / "bare", 6, validated=False)
    assert main(["plot", str(bare), "--out", str(out)]) == 2
    assert "exists; add --force" in one_line_error(capsys, "plot")
    assert main(["plot", str(bare), "--out", str(out), "--force", "--log-loss"]) == 0
    assert colour_pixels(out, COLOURS["train"]) > 300
    assert colour_pixels(out, COLOURS["val"]) < 20 and colour_pixels(out, COLOURS["dice"]) < 20


def test_plot_refuses_bad_input_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty), "--out", str(tmp_path / "a.png")]) == 2
    assert "is not a run folder" in one_line_error(capsys, "plot")
    started = tmp_path / "started"
    started.mkdir()
    (started / "config.json").write_text("{}")
    assert main(["plot", str(started), "--out", str(tmp_path / "a.png")]) == 2
    assert "has no finished epoch yet" in one_line_error(capsys, "plot")
    run = write_run(tmp_path / "run", 2)
    assert main(["plot", str(run), "--out", str(tmp_path / "a.jpg")]) == 2
    assert "give a file name ending in .png" in one_line_error(capsys, "plot")
    assert main(["plot", str(run), "--out", str(tmp_path / "a.png"), "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in one_line_error(capsys, "plot")
    assert main(["plot", str(run), "--out", str(tmp_path / "no" / "a.png")]) == 2
    assert "does not exist" in one_line_error(capsys, "plot")
    assert not list(tmp_path.glob("*.png"))


def test_runs_plot_overlays_one_metric_of_several_runs(qtbot, tmp_path, capsys):
    first, second = write_run(tmp_path / "first", 8), write_run(tmp_path / "second", 8, start=2.0)
    bare = write_run(tmp_path / "bare", 8, validated=False)
    out = tmp_path / "runs.png"
    assert main(["runs-plot", str(first), str(second), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (val_dice of 2 runs)"
    assert QImage(str(out)).width() == 1400
    for index in (0, 1):  # both runs' curves are drawn, each in its colour
        assert colour_pixels(out, run_colour(index)) > 300, index

    # a run without the metric is named; the others are still drawn
    assert main(["runs-plot", str(first), str(bare), "--metric", "val_loss", "--out", str(out), "--force",
                 "--width", "900", "--log"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"wrote {out} (val_loss of 2 runs)", "note: No Validation loss for: bare"]
    assert QImage(str(out)).width() == 900
    assert colour_pixels(out, run_colour(0)) > 200 and colour_pixels(out, run_colour(1)) < 20


def test_runs_plot_names_the_metrics_there_are(qtbot, tmp_path, capsys):
    run = write_run(tmp_path / "run", 3)
    out = tmp_path / "runs.png"
    assert main(["runs-plot", str(run), "--metric", "val_rand", "--out", str(out)]) == 2
    line = one_line_error(capsys, "runs-plot")
    assert "no run shown has a 'val_rand' curve; available: train_loss, train_pixel_accuracy, val_loss" in line
    assert main(["runs-plot", str(run), str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing is not a run folder" in one_line_error(capsys, "runs-plot")
    assert not out.exists()


def test_plot_reads_a_spreadsheet_saved_history_and_refuses_a_broken_one(qtbot, tmp_path, capsys):
    run = write_run(tmp_path / "run", 4)
    (run / "history.csv").write_bytes("\ufeff".encode() + (run / "history.csv").read_bytes())  # Excel's BOM
    assert main(["plot", str(run), "--out", str(tmp_path / "a.png")]) == 0
    assert colour_pixels(tmp_path / "a.png", COLOURS["val"]) > 300
    (run / "history.csv").write_text("loss\n1.0\n")
    assert main(["plot", str(run), "--out", str(tmp_path / "b.png")]) == 2
    assert "history.csv has no epoch or train_loss column" in one_line_error(capsys, "plot")
    (run / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n1,0.5,zero,,,,,,\n")
    assert main(["plot", str(run), "--out", str(tmp_path / "b.png")]) == 2
    assert "line 2 is damaged" in one_line_error(capsys, "plot")
    assert not (tmp_path / "b.png").exists()


def test_the_training_plots_of_a_saved_run_leave_the_step_plot_out(qtbot):
    from PySide6.QtWidgets import QApplication

    from app.ui.training_plots import TrainingPlots

    saved = TrainingPlots(QApplication.palette(), steps=False)
    live = TrainingPlots(QApplication.palette())
    qtbot.addWidget(saved)
    qtbot.addWidget(live)
    assert saved.plot_steps not in saved.ci.items and live.plot_steps in live.ci.items
    assert [saved.ci.layout.itemAt(0, col) for col in range(3)] == [saved.plot_loss, saved.plot_accuracy,
                                                                     saved.plot_overlap]


def test_runs_plot_picks_a_metric_with_values_and_refuses_empty_ones(qtbot, tmp_path, capsys, monkeypatch):
    bare = write_run(tmp_path / "a" / "run", 4, validated=False)
    out = tmp_path / "runs.png"
    assert main(["runs-plot", str(bare), "--out", str(out)]) == 0  # val_dice is there, but empty
    assert capsys.readouterr().out.strip() == f"wrote {out} (train_loss of 1 run)"
    assert main(["runs-plot", str(bare), "--metric", "val_loss", "--out", str(out), "--force"]) == 2
    assert "none of these runs recorded a value of val_loss" in one_line_error(capsys, "runs-plot")
    started = tmp_path / "started"
    started.mkdir()
    (started / "config.json").write_text("{}")
    (started / "history.csv").write_text(",".join(HISTORY_COLUMNS) + "\n")
    assert main(["runs-plot", str(started), "--out", str(tmp_path / "empty.png")]) == 2
    assert "none of these runs has finished an epoch" in one_line_error(capsys, "runs-plot")
    assert not (tmp_path / "empty.png").exists()

    twin = write_run(tmp_path / "b" / "run", 4)  # two runs of one name are told apart by their folders
    from app.ui.runs_curves import RunsCurvesPlot

    captured, original = [], RunsCurvesPlot.set_runs
    monkeypatch.setattr(RunsCurvesPlot, "set_runs",
                        lambda self, series: captured.append([n for n, _ in series]) or original(self, series))
    assert main(["runs-plot", str(bare), str(twin), "--out", str(out), "--force"]) == 0
    assert captured == [["a/run", "b/run"]]


def test_a_garbled_history_is_named(qtbot, tmp_path, capsys):
    good, bad = write_run(tmp_path / "good", 4), write_run(tmp_path / "bad", 4)
    (bad / "history.csv").write_bytes(bytes(range(256)) * 3)
    assert main(["plot", str(bad), "--out", str(tmp_path / "a.png")]) == 2
    assert f"{bad / 'history.csv'}: is damaged, not a CSV text file" in one_line_error(capsys, "plot")
    assert main(["runs-plot", str(good), str(bad), "--out", str(tmp_path / "b.png")]) == 0
    assert f"warning: {bad / 'history.csv'} is damaged (it has no epoch column); left out" in capsys.readouterr().err


def test_runs_plot_refuses_a_run_given_twice(qtbot, tmp_path, capsys):
    run = write_run(tmp_path / "run", 3)
    assert main(["runs-plot", str(run), str(tmp_path / "run" / ".." / "run"), "--out", str(tmp_path / "a.png")]) == 2
    assert f"{run} is given twice" in one_line_error(capsys, "runs-plot")
