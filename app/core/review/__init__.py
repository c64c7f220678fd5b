"""Clinician review of predicted masks (Qt-free): the review record, its folder and lock,
mask corrections, and export of what was approved."""

from .record import CASE_STATES, REVIEWED_STATES, ReviewCase, ReviewRecord, ReviewError, state_label
from .store import ReviewLockedError, ReviewStore

__all__ = ["CASE_STATES", "REVIEWED_STATES", "ReviewCase", "ReviewError", "ReviewLockedError", "ReviewRecord",
           "ReviewStore", "state_label"]
