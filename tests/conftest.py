"""Shared test set-up: offscreen Qt and a per-test user data folder."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# mixed_precision = auto means float32 on every CPU in tests (not bfloat16 where the CPU has it), so
# tiny trained models behave alike on every machine; test_precision.py exercises bfloat16 with "on".
os.environ.setdefault("SEGSTUDIO_CPU_BFLOAT16", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _user_data_dir(tmp_path_factory, monkeypatch):
    """Keep every test away from the real per-user folder."""
    monkeypatch.setenv("SEGSTUDIO_DATA_DIR", str(tmp_path_factory.mktemp("userdata")))

