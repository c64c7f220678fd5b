"""Shared test set-up: offscreen Qt and a per-test user data folder."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _user_data_dir(tmp_path_factory, monkeypatch):
    """Keep every test away from the real per-user folder."""
    monkeypatch.setenv("SEGSTUDIO_DATA_DIR", str(tmp_path_factory.mktemp("userdata")))
