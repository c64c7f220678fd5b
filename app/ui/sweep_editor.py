"""The sweep's grid editor: name, base experiment, axes (a field and its values), output folder,
seed and device, with the Load/Save JSON buttons (the panel wires them).

Each axis is a dotted experiment field (picked from :data:`COMMON_KEYS` or typed) and a
comma-separated list of values; :func:`parse_values` turns ``"unet, segnet"`` into strings and
``"1e-3, 1e-4"`` into numbers (``true``/``false``/``null`` and ``[0.9, 0.999]`` are JSON). The
editor only collects what is typed: whether the grid is valid is the core's call
(:mod:`app.core.sweep`), which the sweep panel asks in the background and shows here. Small
helpers read a sweep file's data for the editor (:func:`spec_shape_problem`, :func:`absolute_path`).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMenu, QPushButton,
                               QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from app.core.sweep import SPEC_KEYS, SWEEP_FILE, SweepError
from app.core.sweep_run import read_state
from app.core.training.run_folder import default_runs_dir

COMMON_KEYS = ("model.name", "loss.name", "optimizer.name", "optimizer.lr", "optimizer.schedule",
               "loss.params.alpha", "loss.params.beta", "loss.params.gamma", "loss.weight_map",
               "model.params.depth", "model.params.base_width", "model.params.dropout",
               "optimizer.params.weight_decay", "optimizer.warmup_steps", "training.epochs",
               "training.batch_size", "training.steps_per_epoch", "training.ema_decay", "data.patch_size")
NAME_KEYS = ("model.name", "loss.name", "optimizer.name", "optimizer.schedule")  # values from a registry
EXAMPLES = {"model.name": "unet, segnet", "loss.name": "dice, focal, tversky", "optimizer.name": "adam, sgd",
            "optimizer.lr": "1e-3, 1e-4", "optimizer.schedule": "constant, cosine",
            "loss.params.alpha": "0.3, 0.5, 0.7", "loss.weight_map": "true, false", "training.epochs": "10, 20"}
BASE_DEVICE = "as base"  # short: the seed and device fields are narrow at 1024 px
KEY_TIP = ("A dotted experiment field, e.g. model.name, loss.params.alpha or optimizer.lr: pick one or type any "
           "field of the experiment JSON. The seed, device and data split are the same for every run.")
VALUES_TIP = ("Comma-separated values. Numbers (1e-3), true/false and [0.9, 0.999] are read as such; anything "
              "else is a name. A parameter such as loss.params.alpha only multiplies the runs whose loss has it.")


# -- values as text ------------------------------------------------------------------------------
def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_value(token: str) -> Any:
    """One value: a JSON number, boolean, null, list or quoted text; anything else is plain text."""
    lowered = token.lower()
    if lowered in ("true", "false", "null"):
        return json.loads(lowered)
    try:
        return json.loads(token)
    except ValueError:
        return token


def parse_values(text: str) -> list:
    """``"unet, segnet"`` -> ``["unet", "segnet"]``; ``"1e-3, 1e-4"`` -> ``[0.001, 0.0001]``."""
    return [parse_value(token) for token in _split_top_level(text)]


def format_value(value: Any) -> str:
    """The text :func:`parse_value` reads back as ``value``."""
    if isinstance(value, str):
        plain = value.strip() == value and "," not in value and parse_value(value) == value
        return value if plain else json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def format_values(values: list) -> str:
    return ", ".join(format_value(v) for v in values)


# -- the spec as data ----------------------------------------------------------------------------
def default_sweep_dir(name: str) -> Path:
    """Where a sweep's runs go when no folder is chosen (as ``segstudio sweep`` does)."""
    return default_runs_dir() / "sweeps" / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "sweep")


def spec_shape_problem(data) -> str | None:
    """Why ``data`` cannot be shown in the editor (not an object, unknown key, grid not a mapping
    of lists), or None; the core checks the rest."""
    if not isinstance(data, dict):
        return f"a sweep is a JSON object, got {type(data).__name__}"
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        return f"{unknown[0]}: unknown key in the sweep; valid: {', '.join(SPEC_KEYS)}"
    grid = data.get("grid")
    if not isinstance(grid, dict):
        return "grid: missing or not an object; a sweep needs a grid such as {\"loss.name\": [\"dice\", \"focal\"]}"
    for key, values in grid.items():
        if not isinstance(values, list):
            return f"grid.{key} must be a list of values, got {values!r}"
    for key, kind in (("name", str), ("device", str), ("out", str), ("seed", int)):
        if data.get(key) is not None and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            return f"{key} must be a {'whole number' if kind is int else 'text'} or null, got {data[key]!r}"
    return None


VALUES_MAX_LENGTH = 2**24  # characters; Qt's default (32,767) cut long value lists silently, mid-value


def read_spec_file(path: Path) -> dict:
    """A sweep file's data, shaped for the editor; ValueError naming the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the sweep: {exc.strerror or exc}") from None
    problem = spec_shape_problem(data)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return data


def read_folder_spec(folder: Path) -> dict:
    """The spec stored in a sweep folder's sweep.json; ValueError naming the folder or file."""
    try:
        state = read_state(folder)
    except SweepError as exc:
        raise ValueError(str(exc)) from None
    spec = (state.get("spec") if isinstance(state, dict) else None) or {}
    problem = spec_shape_problem(spec)
    if problem:
        raise ValueError(f"{folder / SWEEP_FILE}: {problem}")
    return spec


def absolute_path(path: str | None, folder: Path) -> str | None:
    """A relative path in a sweep file, taken from the file's folder."""
    if not isinstance(path, str):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else folder / p)


def describe_folder(out: Path) -> tuple[str, bool]:
    """What the output folder holds (for the line under it) and whether it holds a sweep's state."""
    if not (out / SWEEP_FILE).is_file():
        return f"Runs go to {out}.", False
    try:
        state = read_state(out)
    except SweepError as exc:
        return str(exc), True
    spec = state.get("spec") if isinstance(state, dict) else None
    points = state.get("points") if isinstance(state, dict) else None
    if not isinstance(points, list) or not isinstance(spec, dict):
        return f"{out / SWEEP_FILE} is not the state of a SegStudio sweep (no spec and points).", True
    name = spec.get("name", "?")
    statuses = [p.get("status") for p in points if isinstance(p, dict)]
    finished, failed = statuses.count("completed"), statuses.count("failed")
    return (f"{out} holds the sweep “{name}”: {finished} of {len(points)} runs finished"
            + (f", {failed} failed" if failed else "") + ". Resume skips the finished runs."), True


def describe_experiment(config: dict) -> str:
    """``unet, dice_ce, adam lr 0.001, 50 epochs`` from an experiment's JSON data."""
    part = lambda section, key, default: (config.get(section) or {}).get(key, default)  # noqa: E731
    return (f"{part('model', 'name', 'unet')}, {part('loss', 'name', 'dice_ce')}, "
            f"{part('optimizer', 'name', 'adam')} lr {part('optimizer', 'lr', 0.001)}, "
            f"{part('training', 'epochs', 50)} epochs")



# -- one axis ------------------------------------------------------------------------------------
class AxisRow(QWidget):
    """A grid axis: the field, its values, a menu of valid names and a remove button."""

    changed = Signal()
    removeRequested = Signal(object)  # this row

    def __init__(self, key: str = "", values: list | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.key_combo = QComboBox()
        self.key_combo.setEditable(True)
        self.key_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.key_combo.addItems(COMMON_KEYS)
        self.key_combo.setMinimumContentsLength(14)
        self.key_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.key_combo.setToolTip(KEY_TIP)
        self.values_edit = QLineEdit()
        self.values_edit.setMaxLength(VALUES_MAX_LENGTH)
        self.values_edit.setToolTip(VALUES_TIP)
        self.values_edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.names_button = QPushButton("Add")
        self.names_button.setToolTip("Append a registered name to the values")
        self.names_button.setMenu(QMenu(self.names_button))
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this axis")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.key_combo)
        layout.addWidget(self.values_edit, 1)
        layout.addWidget(self.names_button)
        layout.addWidget(self.remove_button)
        self._names: dict[str, list[str]] = {}
        self.set_key(key)
        self.values_edit.setText(format_values(values or []))
        self.key_combo.currentTextChanged.connect(self._on_key_changed)
        self.values_edit.textChanged.connect(lambda _text: self.changed.emit())
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self))
        self._update_hints()

    def key(self) -> str:
        return self.key_combo.currentText().strip()

    def set_key(self, key: str) -> None:
        self.key_combo.setCurrentText(key)
        if not key:
            self.key_combo.setCurrentIndex(-1)
            self.key_combo.setEditText("")

    def values(self) -> list:
        return parse_values(self.values_edit.text())

    def set_values(self, values: list) -> None:
        self.values_edit.setText(format_values(values))

    def set_registry_names(self, names: dict[str, list[str]]) -> None:
        self._names = names
        self._update_hints()

    def _on_key_changed(self, _text: str) -> None:
        self._update_hints()
        self.changed.emit()

    def _update_hints(self) -> None:
        key = self.key()
        example = EXAMPLES.get(key, "1, 2, 4" if key.startswith(("training.", "model.params.")) else "")
        self.values_edit.setPlaceholderText(f"e.g. {example}" if example else "comma-separated values")
        names = self._names.get(key, [])
        menu = self.names_button.menu()
        menu.clear()
        for name in names:
            menu.addAction(name, lambda n=name: self._append(n))
        self.names_button.setVisible(key in NAME_KEYS)
        self.names_button.setEnabled(bool(names))
        tip = f"Valid names: {', '.join(names)}" if names else VALUES_TIP
        self.values_edit.setToolTip(tip if key in NAME_KEYS else VALUES_TIP)

    def _append(self, name: str) -> None:
        values = self.values()
        if name not in values:
            self.set_values(values + [name])


# -- the whole spec ------------------------------------------------------------------------------
class SweepEditor(QWidget):
    """Name, base experiment, axes, output folder, seed and device of a sweep."""

    changed = Signal()  # anything edited
    useCurrentBase = Signal()  # "Use the current experiment" pressed
    browseRequested = Signal()  # "Browse…" for the output folder pressed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: list[AxisRow] = []
        self._names: dict[str, list[str]] = {}
        self._quiet = False
        files = QHBoxLayout()
        self.load_button = QPushButton("Load JSON…")
        self.load_button.setToolTip("Open a sweep file: {\"name\", \"base\", \"grid\", \"seed\", \"device\", \"out\"}")
        self.save_button = QPushButton("Save JSON…")
        self.save_button.setToolTip("Save this sweep (with its base experiment) as a JSON file; "
                                    "`segstudio sweep FILE` runs it from the command line.")
        self.open_folder_button = QPushButton("Open sweep folder…")
        self.open_folder_button.setToolTip("Show the results of a sweep run earlier and set up the editor to resume it.")
        for button in (self.load_button, self.save_button, self.open_folder_button):
            files.addWidget(button)
        files.addStretch(1)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.name_edit = QLineEdit("sweep")
        self.name_edit.setToolTip("The sweep's name: the default output folder and every run's experiment name "
                                  "start with it.")
        form.addRow("Name", self.name_edit)
        base_row = QHBoxLayout()
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        self.base_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.base_button = QPushButton("Use current experiment")
        self.base_button.setToolTip("Sweep around the experiment being edited in the window instead of the "
                                    "base experiment named by the loaded sweep file.")
        self.base_button.hide()
        base_row.addWidget(self.base_label, 1)
        base_row.addWidget(self.base_button)
        form.addRow("Base", base_row)

        self.axes_box = QVBoxLayout()
        self.axes_box.setSpacing(4)
        axes_header = QHBoxLayout()
        header = QLabel("<b>Grid</b> — one row per field; every combination of values is one run")
        header.setWordWrap(True)
        self.add_button = QPushButton("Add axis")
        self.add_button.setToolTip("Add a field to vary (model, loss, optimizer, learning rate, a loss parameter…)")
        axes_header.addWidget(header, 1)
        axes_header.addWidget(self.add_button)
        self.count_label = QLabel("—")
        self.count_label.setObjectName("sweepRunCount")
        self.count_label.setWordWrap(True)
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        out_row = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setToolTip("Every run gets a folder here, beside sweep.json (the sweep's state) and "
                                 "results.csv. Running again into the same folder skips the finished runs.")
        self.browse_button = QPushButton("Browse…")
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.browse_button)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(-1, 2**31 - 1)
        self.seed_spin.setSpecialValueText(BASE_DEVICE)
        self.seed_spin.setValue(-1)
        self.seed_spin.setToolTip("One seed (weights, sampling, augmentation) for every run, so runs differ only "
                                  "by the grid's fields. The data split is always the base experiment's.")
        self.device_combo = QComboBox()
        self.device_combo.setEditable(True)
        self.device_combo.addItems([BASE_DEVICE, "auto", "cpu", "cuda", "mps"])
        self.device_combo.setToolTip("Where every run trains: auto, cpu, cuda, cuda:N or mps.")
        settings = QFormLayout()
        settings.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        settings.addRow("Output folder", out_row)
        seed_device = QHBoxLayout()
        seed_device.addWidget(self.seed_spin, 1)
        seed_device.addSpacing(12)
        seed_device.addWidget(QLabel("Device"))
        seed_device.addWidget(self.device_combo, 1)
        settings.addRow("Seed", seed_device)

        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(files)
        layout.addLayout(form)
        layout.addLayout(axes_header)
        layout.addLayout(self.axes_box)
        layout.addWidget(self.count_label)
        layout.addLayout(settings)
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        layout.addWidget(self.folder_label)

        self.name_edit.textChanged.connect(self._emit_changed)
        self.out_edit.textChanged.connect(self._emit_changed)
        self.seed_spin.valueChanged.connect(self._emit_changed)
        self.device_combo.currentTextChanged.connect(self._emit_changed)
        self.add_button.clicked.connect(lambda: self.add_axis())
        self.base_button.clicked.connect(self.useCurrentBase)
        self.browse_button.clicked.connect(self.browseRequested)

    # -- axes ----------------------------------------------------------------------------------
    def axes(self) -> list[AxisRow]:
        return list(self._rows)

    def add_axis(self, key: str = "", values: list | None = None) -> AxisRow:
        row = AxisRow(key, values)
        row.set_registry_names(self._names)
        row.changed.connect(self._emit_changed)
        row.removeRequested.connect(self.remove_axis)
        self._rows.append(row)
        self.axes_box.addWidget(row)
        self._emit_changed()
        return row

    def remove_axis(self, row: AxisRow) -> None:
        if row in self._rows:
            self._rows.remove(row)
            self.axes_box.removeWidget(row)
            row.hide()  # at once: deleteLater waits for the event loop
            row.deleteLater()
            self._emit_changed()

    def grid(self) -> tuple[dict[str, list], str | None]:
        """The grid typed so far and the first problem the core cannot see (a field given twice,
        values without a field), or None. Blank rows are ignored."""
        grid: dict[str, list] = {}
        for n, row in enumerate(self._rows, 1):
            key, values = row.key(), row.values()
            if not key and not values:
                continue
            if not key:
                return grid, f"axis {n}: choose or type the field its values are for"
            if key in grid:
                return grid, f"{key} is given twice; put all its values in one axis"
            grid[key] = values
        return grid, None

    def set_grid(self, grid: dict[str, list]) -> None:
        with self._quietly():
            for row in list(self._rows):
                self.remove_axis(row)
            for key, values in grid.items():
                self.add_axis(str(key), list(values) if isinstance(values, list) else [values])
        self._emit_changed()

    def set_registry_names(self, names: dict[str, list[str]]) -> None:
        """Valid names per name field (``model.name`` -> ``["unet", ...]``), for the Add name menus."""
        self._names = dict(names)
        for row in self._rows:
            row.set_registry_names(self._names)

    # -- the other fields ----------------------------------------------------------------------
    def name(self) -> str:
        return self.name_edit.text().strip()

    def seed(self) -> int | None:
        return None if self.seed_spin.value() < 0 else self.seed_spin.value()

    def device(self) -> str | None:
        text = self.device_combo.currentText().strip()
        return None if not text or text == BASE_DEVICE else text

    def out(self) -> str | None:
        return self.out_edit.text().strip() or None

    def fields(self) -> dict:
        """``name``, ``seed``, ``device`` and ``out`` as the sweep JSON has them."""
        return {"name": self.name(), "seed": self.seed(), "device": self.device(), "out": self.out()}

    def set_fields(self, name: str | None = None, seed: int | None = None, device: str | None = None,
                   out: str | None = None) -> None:
        with self._quietly():
            self.name_edit.setText(name or "sweep")
            self.seed_spin.setValue(-1 if seed is None else int(seed))
            self.device_combo.setCurrentText(device or BASE_DEVICE)
            self.out_edit.setText(out or "")
        self._emit_changed()

    def set_default_out(self, path: str) -> None:
        """Show where the runs go when the output folder is left empty."""
        self.out_edit.setPlaceholderText(f"default: {path}")

    def set_base_text(self, text: str, from_file: bool) -> None:
        self.base_label.setText(text)
        self.base_button.setVisible(from_file)

    def set_count_text(self, text: str, kind: str = "") -> None:
        """The run count or the grid's problem (``kind`` "error" shows it in red)."""
        self.count_label.setText(text)
        self.count_label.setStyleSheet("color: #d32f2f;" if kind == "error" else "")

    # -- helpers -------------------------------------------------------------------------------
    def _emit_changed(self, *_args) -> None:
        if not self._quiet:
            self.changed.emit()

    @contextmanager
    def _quietly(self):
        """Batch several edits into one ``changed``."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False
