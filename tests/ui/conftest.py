"""Fixtures for the window's tests: a tiny demo dataset loaded into an experiment state, and the
real main window."""

from __future__ import annotations

import pytest

from app.core.config import ExperimentConfig
from app.core.demo_data import write_demo_dataset
from app.core.experiment_data import load_experiment_data


def tiny_config(data_path) -> ExperimentConfig:
    """A tiny, fast experiment on ``data_path``: depth-2 U-Net, 32-pixel patches, 1 epoch."""
    config = ExperimentConfig(name="tiny")
    config.data.path = str(data_path)
    config.data.patch_size = 32
    config.model.params = {"depth": 2, "base_width": 4}
    config.training.epochs = 1
    config.training.batch_size = 2
    config.training.device = "cpu"
    return config.validate()


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory):
    """Six 64×64 demo EM images (4 train, 2 val), written once per session; never modified."""
    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "data", count=6, size=64, val_fraction=0.34)


@pytest.fixture
def state(qtbot, demo_folder):
    """An :class:`~app.ui.state.ExperimentState` with the tiny experiment and its dataset loaded."""
    from app.ui.state import ExperimentState

    config = tiny_config(demo_folder)
    state = ExperimentState(config)
    state.set_dataset(load_experiment_data(config))
    return state


@pytest.fixture
def window(qtbot):
    """The real main window, shown, with its default layout; closing during training is confirmed."""
    from app.ui.main_window import MainWindow

    win = MainWindow(restore_layout=False)
    win.confirm_close_during_training = lambda: True
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
