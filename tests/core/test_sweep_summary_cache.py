"""A sweep's results table re-reads only the run summaries that changed since the last refresh."""

from __future__ import annotations

import json

import pytest

from app.core import sweep_results
from app.core.atomic import atomic_write_json
from app.core.sweep_results import SummaryCache, ranked_results, results_table

from .test_sweep import write_synthetic_sweep

POINTS = [("bce__lr0.1", {"loss.name": "bce", "optimizer.lr": 0.1}, 0.5),
          ("bce__lr0.01", {"loss.name": "bce", "optimizer.lr": 0.01}, 0.7),
          ("focal__alpha0.0__lr0.1", {"loss.name": "focal", "loss.params.alpha": 0.0, "optimizer.lr": 0.1}, None)]


@pytest.fixture
def counted_reads(monkeypatch):
    """The paths json.load parsed, in order."""
    reads, real = [], json.load

    def counting(handle, *args, **kwargs):
        reads.append(handle.name)
        return real(handle, *args, **kwargs)
    monkeypatch.setattr(sweep_results.json, "load", counting)
    return reads


def test_unchanged_summaries_are_not_read_again_and_changed_ones_are(tmp_path, counted_reads):
    out = tmp_path / "s"
    write_synthetic_sweep(out, POINTS)
    cache = SummaryCache()
    first = ranked_results(out, summaries=cache)[0]
    assert len(counted_reads) == 2  # the failed point's folder is not read
    assert first == results_table(out)  # the same rows as without a cache
    counted_reads.clear()
    assert ranked_results(out, summaries=cache)[0] == first and counted_reads == []

    atomic_write_json(out / "bce__lr0.1" / "summary.json", {"best_dice": 0.9, "reason": "completed"})
    rows = ranked_results(out, summaries=cache)[0]
    assert counted_reads == [str(out / "bce__lr0.1" / "summary.json")]
    assert [(r["rank"], r["name"], r["best_dice"]) for r in rows[:2]] == [(1, "bce__lr0.1", 0.9),
                                                                         (2, "bce__lr0.01", 0.7)]


def test_a_summary_that_disappears_or_breaks_is_not_served_from_the_cache(tmp_path):
    out = tmp_path / "s"
    write_synthetic_sweep(out, POINTS)
    cache = SummaryCache()
    ranked_results(out, summaries=cache)[0]
    (out / "bce__lr0.01" / "summary.json").unlink()
    rows = {r["name"]: r for r in ranked_results(out, summaries=cache)[0]}
    assert rows["bce__lr0.01"]["best_dice"] is None and rows["bce__lr0.01"]["rank"] is None
    (out / "bce__lr0.1" / "summary.json").write_text("{not json")
    with pytest.raises(ValueError):
        ranked_results(out, summaries=cache)[0]
    assert cache.read(out / "no such run") == {}
    (out / "a file").write_text("x")
    assert cache.read(out / "a file") == {}  # a point whose name is a file, not a folder
