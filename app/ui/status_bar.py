"""The status bar: compute device, dataset, and run state, kept current from the experiment state."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

from .state import ExperimentState


class StatusBar(QStatusBar):
    def __init__(self, state: ExperimentState, parent=None):
        super().__init__(parent)
        self.state = state
        self.device_label = QLabel("Device: detecting…")
        self.dataset_label = QLabel("No dataset")
        self.run_label = QLabel("Idle")
        for label, tip in ((self.device_label, "Compute devices PyTorch found"),
                           (self.dataset_label, "The loaded dataset: samples per split"),
                           (self.run_label, "Training state")):
            label.setToolTip(tip)
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)
        state.datasetChanged.connect(self._show_dataset)
        state.splitsChanged.connect(lambda _source: self._show_dataset())
        state.trainingChanged.connect(self._show_training)
        state.runChanged.connect(self._show_run)
        self._show_dataset()

    def set_devices(self, descriptions: list[str]) -> None:
        gpus = [d for d in descriptions if not d.startswith("CPU")]
        self.device_label.setText("Device: " + (", ".join(gpus) if gpus else descriptions[-1] if descriptions else "CPU"))
        self.device_label.setToolTip("Devices found:\n" + "\n".join(descriptions))

    def _show_dataset(self) -> None:
        dataset = self.state.dataset
        if dataset is None:
            self.dataset_label.setText("No dataset")
            return
        counts = dataset.split_counts()
        parts = ", ".join(f"{n} {split}" for split, n in counts.items() if n)
        problems = f" · {len(dataset.problems)} problem(s)" if dataset.problems else ""
        self.dataset_label.setText(f"{dataset.root.name}: {parts}{problems}")
        self.dataset_label.setToolTip(str(dataset.root))

    def _show_training(self, running: bool) -> None:
        self.run_label.setText("Training…" if running else "Idle")
        if not running:
            self._show_run()

    def _show_run(self) -> None:
        if not self.state.training and self.state.checkpoint is not None:
            self.run_label.setText(f"Model: {self.state.checkpoint.parent.parent.name}")
            self.run_label.setToolTip(str(self.state.checkpoint))
