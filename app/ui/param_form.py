"""A form drawn from a registry entry's declared parameters; ranges are enforced by the widgets."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel,
                               QSpinBox, QWidget)

from app.core.registry import Param

from .model_widgets import CompactSpinBox

INT_LIMIT = 2_000_000_000
FLOAT_LIMIT = 1e9


def _tooltip(param: Param) -> str:
    text = param.help or param.name.replace("_", " ")
    if param.type in ("float", "int", "float_range", "int_pair") and (param.minimum is not None or param.maximum is not None):
        low = "−∞" if param.minimum is None else f"{param.minimum:g}"
        high = "∞" if param.maximum is None else f"{param.maximum:g}"
        text += f"\nrange: {low} … {high}"
    if param.type == "choice":
        text += f"\nchoices: {', '.join(map(str, param.choices))}"
    return f"{text}\ndefault: {param.default}"


def label_for(name: str) -> str:
    return name.replace("_", " ").capitalize()


def form_labels(root: QWidget) -> Iterator[QLabel]:
    """The row labels of every form layout inside ``root`` (spanning rows have none)."""
    for form in root.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and isinstance(item.widget(), QLabel):
                yield item.widget()


def align_labels(labels: Iterable[QLabel]) -> int:
    """Give ``labels`` the width of the widest, so the fields of separate forms start in one
    column; returns that width. Call again after a form is rebuilt."""
    labels = list(labels)
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)
    return width


class _InputEater(QObject):
    """Swallows the input events that would change a check box or a choice."""

    EATEN = (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick,
             QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.Wheel)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt naming
        return event.type() in self.EATEN


class ParamForm(QWidget):
    """One row per :class:`Param`. ``changed`` carries the whole value dict after any edit."""

    changed = Signal(dict)

    def __init__(self, params: Iterable[Param] = (), values: dict[str, Any] | None = None, parent=None):
        super().__init__(parent)
        self._input_eater = _InputEater(self)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._params: list[Param] = []
        self._editors: dict[str, Any] = {}
        self._quiet = False
        self.set_params(params, values)

    # -- building ----------------------------------------------------------------------------
    def set_params(self, params: Iterable[Param], values: dict[str, Any] | None = None) -> None:
        """Rebuild the form for another entry."""
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._params = list(params)
        self._editors = {}
        for param in self._params:
            editor = self._make_editor(param)
            label = QLabel(label_for(param.name))
            label.setToolTip(_tooltip(param))
            self._layout.addRow(label, editor)
        if not self._params:
            self._layout.addRow(QLabel("<i>no parameters</i>"))
        self.set_values({**{p.name: p.default for p in self._params}, **(values or {})})

    def focus_chain(self) -> list[QWidget]:
        """The editors in the order they are shown (both boxes of a range), for the panel's Tab order."""
        chain: list[QWidget] = []
        for param in self._params:
            editor = self._editors[param.name]
            chain.extend(editor if isinstance(editor, tuple) else (editor,))
        return chain

    def _make_editor(self, param: Param) -> QWidget:
        tip = _tooltip(param)
        if param.type == "bool":
            box = QCheckBox()
            box.toggled.connect(self._emit)
            widget, self._editors[param.name] = box, box
        elif param.type == "choice":
            combo = QComboBox()
            for choice in param.choices:
                combo.addItem(str(choice), choice)
            combo.currentIndexChanged.connect(self._emit)
            widget, self._editors[param.name] = combo, combo
        elif param.type in ("float", "int"):
            spin = self._spin(param)
            widget, self._editors[param.name] = spin, spin
        else:  # float_range / int_pair
            widget = QWidget()
            row = QHBoxLayout(widget)
            row.setContentsMargins(0, 0, 0, 0)
            low, high = self._spin(param), self._spin(param)
            row.addWidget(low)
            row.addWidget(QLabel("–"))
            row.addWidget(high)
            if param.type == "float_range":  # keep low <= high as either end moves
                low.valueChanged.connect(lambda v, other=high: other.value() < v and other.setValue(v))
                high.valueChanged.connect(lambda v, other=low: other.value() > v and other.setValue(v))
            self._editors[param.name] = (low, high)
        widget.setToolTip(tip)
        widget.setObjectName(f"param_{param.name}")
        return widget

    def _spin(self, param: Param):
        integer = param.type in ("int", "int_pair")
        spin = QSpinBox() if integer else CompactSpinBox()
        limit = INT_LIMIT if integer else FLOAT_LIMIT
        low = -limit if param.minimum is None else max(-limit, param.minimum)
        high = limit if param.maximum is None else min(limit, param.maximum)
        if integer:
            spin.setRange(int(math.ceil(low)), int(math.floor(high)))
        else:
            spin.setRange(low, high)  # exact: the box keeps 12 decimals and shows 6 significant digits
            span = high - low if math.isfinite(high - low) and high - low < limit else 10.0
            spin.setSingleStep(float(f"{span / 100:.1g}") if span > 0 else 0.1)
        spin.setKeyboardTracking(False)
        spin.setToolTip(_tooltip(param))
        spin.valueChanged.connect(self._emit)
        return spin

    # -- values ------------------------------------------------------------------------------
    def params(self) -> list[Param]:
        return list(self._params)

    def editor(self, name: str):
        """The widget (or pair of spin boxes) editing ``name`` (for tests and shortcuts)."""
        return self._editors[name]

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for param in self._params:
            editor = self._editors[param.name]
            if param.type == "bool":
                out[param.name] = editor.isChecked()
            elif param.type == "choice":
                out[param.name] = editor.currentData()
            elif param.type == "int":
                out[param.name] = int(editor.value())
            elif param.type == "float":
                out[param.name] = float(editor.value())
            elif param.type == "int_pair":
                out[param.name] = [int(editor[0].value()), int(editor[1].value())]
            else:
                out[param.name] = [float(editor[0].value()), float(editor[1].value())]
        return out

    def set_read_only(self, read_only: bool = True) -> None:
        """Values shown at full contrast that cannot be changed (a disabled form greys them out)."""
        for editor in self._editors.values():
            for widget in editor if isinstance(editor, (tuple, list)) else (editor,):
                if isinstance(widget, QAbstractSpinBox):
                    widget.setReadOnly(read_only)
                    widget.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons if read_only
                                            else QAbstractSpinBox.ButtonSymbols.UpDownArrows)
                elif read_only:  # a check box or a choice: the mouse, wheel and keys are eaten
                    widget.installEventFilter(self._input_eater)
                else:
                    widget.removeEventFilter(self._input_eater)

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` without emitting ``changed``."""
        self._quiet = True
        try:
            for param in self._params:
                if param.name not in values:
                    continue
                value, editor = values[param.name], self._editors[param.name]
                if param.type == "bool":
                    editor.setChecked(bool(value))
                elif param.type == "choice":
                    index = editor.findData(value)
                    editor.setCurrentIndex(max(0, index))
                elif param.type in ("int", "float"):
                    editor.setValue(value)
                else:
                    editor[0].setValue(value[0])
                    editor[1].setValue(value[1])
        finally:
            self._quiet = False

    def _emit(self, *_args) -> None:
        if not self._quiet:
            self.changed.emit(self.values())
