"""``segstudio loss-curves`` (app.cli.loss_curves)."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from app.cli import main

from .helpers import one_line_error


def read(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bce_curves_are_the_textbook_values(capsys):
    assert main(["loss-curves", "--losses", "bce,dice", "--points", "5"]) == 0
    rows = read(capsys.readouterr().out)
    assert [float(r["p"]) for r in rows] == pytest.approx([0.001, 0.2505, 0.5, 0.7495, 0.999])
    for row in rows:
        p = float(row["p"])
        assert float(row["bce foreground loss"]) == pytest.approx(-math.log(p), rel=1e-4)
        assert float(row["bce foreground d/dp"]) == pytest.approx(-1 / p, rel=1e-4)  # float32 arithmetic
        assert float(row["bce background loss"]) == pytest.approx(-math.log(1 - p), rel=1e-3)  # float32 log1p
    dice = [float(r["dice foreground loss"]) for r in rows]
    assert dice == sorted(dice, reverse=True) and dice[-1] < 1e-4  # best at p = 1 for a foreground pixel


def test_region_size_spreads_a_region_loss(capsys):
    main(["loss-curves", "--losses", "dice", "--points", "3", "--region", "16"])
    small = float(read(capsys.readouterr().out)[0]["dice foreground loss"])
    main(["loss-curves", "--losses", "dice", "--points", "3", "--region", "256"])
    large = float(read(capsys.readouterr().out)[0]["dice foreground loss"])
    assert small > 10 * large


def test_the_experiments_loss_and_its_parameters(tmp_path, capsys):
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({"loss": {"name": "focal", "params": {"gamma": 0.0}}}))
    out = tmp_path / "curves.csv"
    assert main(["loss-curves", "--config", str(config), "--points", "3", "--out", str(out)]) == 0
    rows = read(out.read_text())
    assert list(rows[0])[1:3] == ["focal foreground loss", "focal foreground d/dp"]
    # gamma 0 (the experiment's, not focal's default 2): cross-entropy times a constant class weight
    ratios = [float(r["focal foreground loss"]) / -math.log(float(r["p"])) for r in rows]
    assert ratios == pytest.approx([ratios[0]] * 3, rel=1e-3)
    assert main(["loss-curves", "--config", str(config), "--out", str(out)]) == 2
    assert "add --force" in capsys.readouterr().err


def test_bad_requests_are_one_line(capsys):
    assert main(["loss-curves"]) == 2
    assert capsys.readouterr().err.strip() == "segstudio loss-curves: give --losses (e.g. dice,bce) or --config EXP.json"
    assert main(["loss-curves", "--losses", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("segstudio loss-curves: unknown loss 'nope'; valid: ce,") and "\n" not in err


def test_sizes_beyond_any_use_are_refused_at_once(capsys, tmp_path):
    assert main(["loss-curves", "--losses", "dice", "--points", "100001"]) == 2
    assert "points must be 2 to 100,000, got 100001" in one_line_error(capsys, "loss-curves")
    assert main(["loss-curves", "--losses", "dice", "--region", str(10 ** 12)]) == 2
    assert "the region must be 2 to 16,777,216 pixels" in one_line_error(capsys, "loss-curves")
    assert main(["loss-curves", "--losses", "dice", "--out", str(tmp_path / "curves.txt")]) == 2
    assert "give a file name ending in .csv" in one_line_error(capsys, "loss-curves")
