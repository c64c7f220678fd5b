"""The runs browser's engine: list the run folders of a runs folder, read their curves,
rename or delete a run, export the table, and compare runs image by image.

Scanning reads only the small files of each run (config.json, summary.json, history.csv and
the head and tail of train.log) as plain JSON/CSV text, so runs written by other versions, or
naming models that are no longer registered, are still listed; it never imports torch. A
damaged run is listed with what could be read, plus a problem message.

Where the values come from:

* settings (experiment name, dataset, model, loss, optimizer, learning rate, planned epochs)
  from config.json; the model, loss, optimizer and learning rate fall back to summary.json;
* scores (lowest loss, highest accuracy, best IoU/Dice, adapted Rand error) from history.csv,
  computed as the training engine's summary does (validation values when the history has any,
  training values otherwise; the earliest epoch wins a tie); summary.json fills what the
  history lacks. The adapted Rand error is shown only when a run recorded one (a history column
  ``val_adapted_rand_error``/``val_rand_error`` or a summary key ``adapted_rand_error``/
  ``rand_error``); nothing is estimated;
* the status from summary.json's ``reason`` and train.log's last ``failed:``/``resumed``/
  ``finished`` line (see :func:`_status`);
* the date from a ``YYYYmmdd-HHMMSS`` stamp at the start of the folder name (how new run
  folders are named), else config.json's modification time (written once, when the run
  starts), else the folder's.
"""

from .compare import PerImageComparison, compare_per_image
from .info import (COLUMNS, CSV_COLUMNS, FAILED, FINISHED, INCOMPLETE, NUMERIC_KEYS, STATUS_HELP, STOPPED, RunInfo,
                   cell_value, format_duration, format_value, matches, runs_table_csv, sort_runs, write_runs_csv)
from .manage import check_run_name, delete_run, rename_run
from .reading import is_run_folder, read_curves, read_run, scan_runs

__all__ = ["COLUMNS", "CSV_COLUMNS", "FAILED", "FINISHED", "INCOMPLETE", "NUMERIC_KEYS", "STATUS_HELP", "STOPPED",
           "PerImageComparison", "RunInfo", "cell_value", "check_run_name", "compare_per_image", "delete_run",
           "format_duration", "format_value", "is_run_folder", "matches", "read_curves", "read_run", "rename_run",
           "runs_table_csv", "scan_runs", "sort_runs", "write_runs_csv"]
