"""Small widgets and widget factories of the model panel.

Holds the learning-rate spin box (compact text, 1-2-5 arrow steps), the parameter-count
formatter, and the factories that make the panel's plain editors (group boxes with a form,
labelled form rows, integer / float spin boxes and fixed-choice combo boxes) configured the same
way everywhere: no keyboard tracking, an object name, optional special-value text and suffix.
None of this knows about the experiment state; the panel connects and binds the widgets.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QSpinBox,
                               QVBoxLayout, QWidget)

LR_MIN, LR_MAX = 1e-9, 10.0


def format_count(count: int) -> str:
    """``1.94 M parameters`` from a million on, the exact number below."""
    if count >= 1_000_000:
        return f"{count / 1e6:.2f} M parameters"
    return f"{count:,} parameters"


def _next_125(value: float, up: bool) -> float:
    """The next value of the 1-2-5 series (…, 1e-4, 2e-4, 5e-4, 1e-3, …) above or below ``value``."""
    exponent = math.floor(math.log10(value)) if value > 0 else -9
    series = sorted(float(f"{m * 10.0 ** e:.12g}") for e in range(exponent - 1, exponent + 2) for m in (1, 2, 5))
    if up:
        return next(v for v in series if v > value * (1 + 1e-9))
    return next(v for v in reversed(series) if v < value * (1 - 1e-9))


class CompactSpinBox(QDoubleSpinBox):
    """A float box that shows what is stored, in 6 significant digits (``0.0005``, ``1e-05``),
    and takes typed e-notation; a fixed number of decimals showed 5e-4 as ``0.00``."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)  # values are kept to 12 decimals; the text shows 6 significant digits
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt naming
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt naming
        try:
            return min(self.maximum(), max(self.minimum(), float(text.strip())))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        try:
            number = float(stripped)
        except ValueError:
            ok = all(c in "0123456789.eE+-" for c in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        state = QValidator.State.Acceptable if self.minimum() <= number <= self.maximum() else \
            QValidator.State.Intermediate
        return state, text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.valueFromText(text))


class LearningRateSpinBox(CompactSpinBox):
    """A rate between 1e-9 and 10 shown compactly (``0.001``, ``1e-05``); arrows step 1-2-5."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setRange(LR_MIN, LR_MAX)
        self.setMinimumWidth(110)

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt naming
        value = self.value()
        for _ in range(abs(steps)):
            value = _next_125(value, steps > 0)
        self.setValue(min(LR_MAX, max(LR_MIN, value)))


class Quiet:
    """Context: widget changes made inside are refreshes from the config, not user edits.

    Counts in ``owner._refreshing``, which the owner's slots check before storing an edit."""

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        self.owner._refreshing += 1

    def __exit__(self, *exc):
        self.owner._refreshing -= 1


def debounce_timer(parent: QObject, msecs: int, slot) -> QTimer:
    """A single-shot timer of ``msecs`` calling ``slot``; restarting it postpones the call."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(msecs)
    timer.timeout.connect(slot)
    return timer


def group_box(title: str, name: str, tip: str) -> tuple[QGroupBox, QVBoxLayout, QFormLayout]:
    """A named group box with a vertical layout whose first item is a growing form."""
    box = QGroupBox(title)
    box.setObjectName(name)
    box.setToolTip(tip)
    layout = QVBoxLayout(box)
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    layout.addLayout(form)
    return box, layout, form


def form_row(form: QFormLayout, text: str, widget: QWidget, tip: str) -> QWidget:
    """Add ``widget`` under the label ``text`` to ``form``, both with the tooltip ``tip``; returns ``widget``."""
    label = QLabel(text)
    label.setToolTip(tip)
    widget.setToolTip(tip)
    form.addRow(label, widget)
    return widget


def description_label(name: str) -> QLabel:
    """A word-wrapped label for the description of the selected registry entry."""
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setToolTip("Description of the selected entry")
    return label


def _setup_spin(spin: QAbstractSpinBox, name: str, low, high, step, special: str, suffix: str, slot):
    spin.setObjectName(name)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setKeyboardTracking(False)
    if special:
        spin.setSpecialValueText(special)
    if suffix:
        spin.setSuffix(suffix)
    spin.valueChanged.connect(slot)
    return spin


def int_spin(name: str, low: int, high: int, slot, step: int = 1, special: str = "", suffix: str = "") -> QSpinBox:
    """An integer spin box in ``low … high`` that calls ``slot`` with each committed value."""
    return _setup_spin(QSpinBox(), name, low, high, step, special, suffix, slot)


def float_spin(name: str, low: float, high: float, decimals: int, step: float, slot, special: str = "",
               suffix: str = "") -> QDoubleSpinBox:
    """A float spin box in ``low … high`` with ``decimals`` decimals that calls ``slot`` with each committed value."""
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)  # before the range, which is rounded to the decimals
    return _setup_spin(spin, name, low, high, step, special, suffix, slot)


def choice_combo(name: str, choices, helps: dict[str, str], slot) -> QComboBox:
    """A combo box of fixed ``choices`` (each its own data), each with its ``helps`` entry as tooltip."""
    combo = QComboBox()
    combo.setObjectName(name)
    for index, choice in enumerate(choices):
        combo.addItem(choice, choice)
        combo.setItemData(index, helps.get(choice, choice), Qt.ItemDataRole.ToolTipRole)
    combo.currentIndexChanged.connect(slot)
    return combo


__all__ = ["LR_MAX", "LR_MIN", "CompactSpinBox", "LearningRateSpinBox", "Quiet", "choice_combo", "debounce_timer",
           "description_label", "float_spin", "form_row", "format_count", "group_box", "int_spin"]
