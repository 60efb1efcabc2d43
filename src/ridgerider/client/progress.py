"""An optional progress display for ``wait``: rich's bar, or plain lines where rich is missing.

The SDK's torch-free install (``pip install --no-deps ridgerider && pip install httpx
pydantic``) has no ``rich``; ``wait(progress=True)`` then prints a line on stderr whenever the
job's status, nodes or steps change.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ridgerider.schemas import JobPublic

__all__ = ["JobProgress"]


class JobProgress:
    """``with JobProgress(job_id, enabled) as bar: bar.update(job)``; a no-op when disabled.

    ``stream``: where the plain lines go when rich is not installed (default ``sys.stderr``).
    """

    def __init__(self, job_id: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.job_id = job_id
        self.enabled = enabled
        self.stream = stream
        self._progress: Any = None
        self._task: Any = None
        self._plain = False
        self._last = ""

    def __enter__(self) -> JobProgress:
        if not self.enabled:
            return self
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        except ImportError:
            self._plain = True
            return self
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
        if self._plain:
            self._line(job, riding)
        elif self._progress is not None:
            self._progress.update(
                self._task,
                completed=job.nodes,
                total=job.max_nodes,
                status=job.status,
                steps=job.steps + riding,
            )

    def _line(self, job: JobPublic, riding: int) -> None:
        budget = f"/{job.max_nodes}" if job.max_nodes else ""
        line = (
            f"job {self.job_id}: {job.status}, {job.nodes}{budget} nodes, "
            f"{job.steps + riding:,} steps"
        )
        if line != self._last:
            stream = self.stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()
            self._last = line

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
