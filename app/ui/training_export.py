"""Export of a training run's curves: the per-epoch history as CSV and the plots as PNG.

:func:`write_history_csv` writes the ``EpochFinished`` events in the columns of ``history.csv``
(:data:`~app.core.training.run_folder.HISTORY_COLUMNS`, floats with 8 significant digits) and
:func:`write_png` encodes a rendered image; both write atomically, so a failed export never
leaves a half-written file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage

from app.core.atomic import atomic_write_bytes, atomic_write_text
from app.core.training.run_folder import HISTORY_COLUMNS


def csv_value(value) -> str:
    """One CSV cell: empty for a missing value, floats to 8 significant digits."""
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


def write_history_csv(path: str | Path, history: list) -> Path:
    """Write the epoch events ``history`` as CSV (atomically)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for event in history:
        row = event.row()
        writer.writerow([csv_value(row.get(column, "")) for column in HISTORY_COLUMNS])
    return atomic_write_text(path, buffer.getvalue())


def write_png(path: str | Path, image: QImage) -> Path:
    """Save ``image`` as PNG (atomically); OSError if it cannot be encoded."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if image.isNull() or not image.save(buffer, "PNG"):
        raise OSError(f"{path}: could not render the plots to PNG")
    buffer.close()
    return atomic_write_bytes(path, bytes(data.data()))
