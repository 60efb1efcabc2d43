"""An optional progress bar for ``wait`` (rich, imported only when asked for)."""

from __future__ import annotations

from typing import Any

from ridgerider.schemas import JobPublic

__all__ = ["JobProgress"]


class JobProgress:
    """``with JobProgress(job_id, enabled) as bar: bar.update(job)``; a no-op when disabled."""

    def __init__(self, job_id: int, enabled: bool) -> None:
        self.job_id = job_id
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> JobProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn(f"job {self.job_id}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps {task.fields[steps]:,}  {task.fields[status]}"),
                console=Console(stderr=True),
            )
            self._task = self._progress.add_task("nodes", total=None, status="", steps=0)
            self._progress.start()
        return self

    def update(self, job: JobPublic, riding: int = 0) -> None:
        """Show the job's nodes against its node budget, and its steps with ``riding`` ones.

        ``riding``: the steps of the rides in flight (``GET /jobs/{id}/rides``), so a ride of
        minutes moves the step count while it runs.
        """
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=job.nodes,
                total=job.max_nodes,
                status=job.status,
                steps=job.steps + riding,
            )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
