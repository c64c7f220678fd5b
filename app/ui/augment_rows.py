"""Pipeline-entry editor widgets of the augmentation panel.

:class:`TransformRow` edits one entry of ``config.augmentation`` (enabled, probability and the
transform's parameters through a :class:`ParamForm`), keeping untouched values exactly as
configured and showing unknown transforms read-only with a warning; it reports edits, move and
remove requests through signals and leaves committing them to the panel.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QLabel, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from app.core.augment import TRANSFORMS
from app.core.registry import RegistryError

from .param_form import ParamForm, form_labels
from .styles import banner_style

BANNER_STYLE = banner_style("error", "QLabel")


def _tool_button(text: str, tip: str, name: str, slot) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setObjectName(name)
    button.setAutoRaise(True)
    button.clicked.connect(slot)
    return button


class TransformRow(QFrame):
    """Editor of one pipeline entry: enabled, probability and the transform's parameters.

    Values the user has not touched are kept exactly as in the config (widgets may round or
    clamp what they show); ``spec()`` returns the entry as it should be saved.
    """

    changed = Signal()
    moveRequested = Signal(int)  # -1 up, +1 down
    removeRequested = Signal()

    def __init__(self, spec: Any, position: int, count: int, expanded: bool = True, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName(f"transform_row_{position}")
        self._raw = copy.deepcopy(spec)
        raw = spec if isinstance(spec, dict) else {}
        self.name = raw.get("name")
        self.entry = TRANSFORMS.get(self.name) if isinstance(self.name, str) and self.name in TRANSFORMS else None
        self._enabled = raw.get("enabled", True)
        self._p = raw.get("p", 1.0)
        self._params = copy.deepcopy(raw.get("params", {}))
        self._build(position, count, expanded)

    # -- building ----------------------------------------------------------------------------
    def _build(self, position: int, count: int, expanded: bool) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 3, 4, 3)
        layout.setSpacing(3)
        layout.addLayout(self._header(position, count, expanded))
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(18, 0, 0, 0)
        body.setSpacing(3)
        p_row = self._probability_row()
        body.addLayout(p_row)
        params = self.entry.params if self.entry is not None else ()
        self.form = ParamForm(params, self._form_values())
        p_row.setHorizontalSpacing(self.form.layout().horizontalSpacing())  # nested, it took the body's 3 px
        self.form.setObjectName("params")
        self.form.changed.connect(self._on_params)
        body.addWidget(self.form)
        if self.entry is None:
            problem = QLabel(f"Unknown augmentation {self.name!r}: remove it, or pick one of "
                             f"{', '.join(TRANSFORMS.names())}.")
            problem.setWordWrap(True)
            problem.setStyleSheet(BANNER_STYLE)
            body.addWidget(problem)
            for widget in (self.enabled_box, self.p_slider, self.p_spin, self.form):
                widget.setEnabled(False)
        layout.addWidget(self.body)
        self.body.setVisible(expanded)

    def _header(self, position: int, count: int, expanded: bool) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(2)
        self.expand_button = QToolButton()
        self.expand_button.setAutoRaise(True)
        self.expand_button.setCheckable(True)
        self.expand_button.setChecked(expanded)
        self.expand_button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.expand_button.setToolTip("Show or hide this transform's settings")
        self.expand_button.toggled.connect(self.set_expanded)
        self.enabled_box = QCheckBox(str(self.name))
        self.enabled_box.setObjectName("enabled")
        self.enabled_box.setChecked(bool(self._enabled))
        kind = self.entry.meta.get("kind", "") if self.entry is not None else "unknown"
        description = self.entry.description if self.entry is not None else "not a registered augmentation"
        self.enabled_box.setToolTip(f"{description}\nkind: {kind}\nTick to use this transform in training.")
        self.enabled_box.toggled.connect(self._on_enabled)
        kind_label = QLabel(kind)
        kind_label.setEnabled(False)  # the palette's disabled text: a quiet tag in any theme
        kind_label.setToolTip("geometric: moves image, mask and valid region together; intensity: image only")
        self.up_button = _tool_button("▲", "Move up (applied earlier)", "move_up",
                                      lambda: self.moveRequested.emit(-1))
        self.down_button = _tool_button("▼", "Move down (applied later)", "move_down",
                                        lambda: self.moveRequested.emit(1))
        self.remove_button = _tool_button("✕", "Remove this transform from the pipeline", "remove",
                                          lambda: self.removeRequested.emit())
        self.up_button.setEnabled(position > 0)
        self.down_button.setEnabled(position < count - 1)
        for widget in (self.expand_button, self.enabled_box):
            row.addWidget(widget)
        row.addWidget(kind_label)
        row.addStretch(1)
        for widget in (self.up_button, self.down_button, self.remove_button):
            row.addWidget(widget)
        return row

    def _probability_row(self) -> QFormLayout:
        """A one-row form (p: slider and spin box), so its field lines up with the parameters'."""
        row = QFormLayout()
        row.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        field = QHBoxLayout()
        tip = "Probability that this transform is applied to a training patch (0 = never, 1 = always)"
        label = self.p_label = QLabel("p")
        label.setToolTip(tip)
        self.p_slider = QSlider(Qt.Orientation.Horizontal)
        self.p_slider.setObjectName("p_slider")
        self.p_slider.setRange(0, 100)
        self.p_slider.setToolTip(tip)
        self.p_spin = QDoubleSpinBox()
        self.p_spin.setObjectName("p_spin")
        self.p_spin.setRange(0.0, 1.0)
        self.p_spin.setDecimals(3)
        self.p_spin.setSingleStep(0.05)
        self.p_spin.setKeyboardTracking(False)
        self.p_spin.setToolTip(tip)
        shown = self._p if isinstance(self._p, (int, float)) and not isinstance(self._p, bool) else 1.0
        self.p_spin.setValue(shown)
        self.p_slider.setValue(round(self.p_spin.value() * 100))
        self.p_slider.valueChanged.connect(lambda value: self.p_spin.setValue(value / 100))
        self.p_spin.valueChanged.connect(self._on_p)
        field.addWidget(self.p_slider, 1)
        field.addWidget(self.p_spin)
        row.addRow(label, field)
        return row

    def labels(self) -> list[QLabel]:
        """The row labels (p and the parameters'), for lining up the fields of all rows."""
        return list(form_labels(self))

    def _form_values(self) -> dict:
        """Params to show: each valid configured value, the default where one is invalid."""
        if self.entry is None or not isinstance(self._params, dict):
            return {}
        declared = {p.name: p for p in self.entry.params}
        values = self.entry.defaults()
        for key, value in self._params.items():
            if key in declared:
                try:
                    values[key] = declared[key].validate(value)
                except RegistryError:
                    pass
        return values

    # -- editing -----------------------------------------------------------------------------
    def set_expanded(self, expanded: bool) -> None:
        self.body.setVisible(expanded)
        self.expand_button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        if self.expand_button.isChecked() != expanded:
            self.expand_button.setChecked(expanded)

    @property
    def expanded(self) -> bool:
        return self.expand_button.isChecked()

    def _on_enabled(self, checked: bool) -> None:
        self._enabled = checked
        self.changed.emit()

    def _on_p(self, value: float) -> None:
        self.p_slider.blockSignals(True)
        self.p_slider.setValue(round(value * 100))
        self.p_slider.blockSignals(False)
        self._p = round(float(value), 3)
        self.changed.emit()

    def _on_params(self, values: dict) -> None:
        self._params = values
        self.changed.emit()

    def spec(self) -> Any:
        """The entry for the pipeline dict (unknown entries come back unchanged)."""
        if self.entry is None:
            return copy.deepcopy(self._raw)
        return {"name": self.name, "enabled": self._enabled, "p": self._p, "params": copy.deepcopy(self._params)}
