"""The review's long jobs, off the GUI thread with progress and Cancel: creating a review
(pairing and checking files, or predicting with a checkpoint) and exporting one."""

from __future__ import annotations

import copy
from pathlib import Path

from app.core.review import ReviewStore
from app.core.review.export import conflicts, describe_conflicts, export_review

from .tasks import TaskRunner


class ReviewJobs:
    """Runs one review job at a time for ``panel`` and shows its progress in the panel's job row."""

    def __init__(self, panel):
        self.panel = panel
        self.creator = TaskRunner("review-create", panel)  # separate runners: neither cancels the other
        self.exporter = TaskRunner("review-export", panel)
        self.last_export = None

    def _start(self, runner: TaskRunner, label: str, fn, on_done) -> None:
        p = self.panel
        p.job_label.setText(label)
        p.job_progress.setRange(0, 0)
        p.job_row.show()

        def progress(done: int, total: int) -> None:
            p.job_progress.setRange(0, max(1, total))
            p.job_progress.setValue(done)

        def failed(message: str) -> None:
            p.job_row.hide()
            p.show_error(message)

        def done(result) -> None:
            p.job_row.hide()
            on_done(result)

        task = runner.start(fn, on_done=done, on_failed=failed, on_progress=progress)
        if task is not None:
            task.ended.connect(lambda _t: self.busy or p.job_row.hide())

    def create(self, values: dict) -> None:
        """Create a review from the New review dialog's ``values`` and open it."""
        def job(ctx):
            stop = lambda: ctx.cancelled  # noqa: E731
            if values["kind"] == "checkpoint":
                return ReviewStore.create_from_checkpoint(values["review"], values["checkpoint"], values["images"],
                                                          progress=ctx.progress, should_stop=stop)
            return ReviewStore.create_from_folders(values["review"], values["images"], values["masks"],
                                                   progress=ctx.progress, should_stop=stop)

        label = "Predicting the images…" if values["kind"] == "checkpoint" else "Checking images and masks…"
        self._start(self.creator, label, job, self.panel.set_store)

    def export(self, folder: str, fmt: str) -> None:
        live = self.panel.session.store
        store = ReviewStore(live.folder, copy.deepcopy(live.record), None)  # a snapshot: decisions may go on
        existing = conflicts(store, Path(folder), fmt)
        if existing and not self.panel.ask_overwrite(describe_conflicts(store, Path(folder), fmt)):
            return

        def job(ctx):
            return export_review(store, folder, fmt, overwrite=bool(existing), progress=ctx.progress,
                                 should_stop=lambda: ctx.cancelled)

        def done(result) -> None:
            self.last_export = result
            more = f" (and {len(result.problems) - 1} more: the report's rows with no exported mask)"
            missing = (f" {len(result.problems)} approved mask(s) NOT exported, so the export is incomplete: "
                       f"{result.problems[0]}" + (more if len(result.problems) > 1 else "")) if result.problems else ""
            self.panel.show_message(f"Exported {len(result.masks)} mask(s), {result.report.name} and "
                                    f"{result.summary.name} to {result.folder}.{missing}",
                                    "warning" if result.problems else "success")

        self._start(self.exporter, "Exporting…", job, done)

    def cancel(self) -> None:
        self.creator.cancel()
        self.exporter.cancel()
        self.panel.job_row.hide()

    @property
    def busy(self) -> bool:
        return self.creator.busy or self.exporter.busy

    def shutdown(self) -> None:
        self.creator.shutdown()
        self.exporter.shutdown()
