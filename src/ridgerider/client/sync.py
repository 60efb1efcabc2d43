"""The blocking client."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ridgerider import schemas
from ridgerider.client._base import Call, to_dataframe, to_tensor, unwrap
from ridgerider.client._calls import Calls
from ridgerider.client._retry import DEFAULT_URL, Backoff, env_connection
from ridgerider.client._xp_calls import XpCalls
from ridgerider.client.progress import JobProgress

if TYPE_CHECKING:  # pragma: no cover
    from pandas import DataFrame
    from torch import Tensor

__all__ = ["Client"]


class Client:
    """A client of a ridgerider service.

    Args:
        base_url: where the service runs (``ridgerider serve`` defaults to
            ``http://127.0.0.1:8000``).
        token: an API token (``ridgerider token create``); not needed in development mode.
        timeout: seconds per request.
        retries: how often a read (or a submission, made idempotent by its key) is sent again
            after a connection error or a 503, e.g. while the service restarts, and any call
            after a 429; waits grow exponentially with jitter, or follow ``Retry-After``.
        http: an ``httpx.Client`` to use instead of a new one (tests pass an in-process app's).
        backoff: the retry policy (overrides ``retries``); see ``ridgerider.client.Backoff``.
        sleep: how to wait between attempts (``time.sleep``).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        http: httpx.Client | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.http.headers.update(headers)
        self.backoff = backoff or Backoff(retries=retries)
        self.retries = self.backoff.retries
        self._sleep = sleep

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client of ``$RIDGERIDER_URL`` with ``$RIDGERIDER_TOKEN``.

        The URL defaults to ``http://127.0.0.1:8000``, the token to none; ``kwargs`` as for the
        constructor.
        """
        url, token = env_connection()
        return cls(url, token, **kwargs)

    def _do(self, call: Call) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.send(call.request(self.http))
            except httpx.TransportError:
                delay = self.backoff.after_error(call, attempt)
                if delay is None:
                    raise
            else:
                delay = self.backoff.after_response(call, response, attempt)
                if delay is None:
                    return unwrap(response, call.model)
            self._sleep(delay)

    def submit(
        self,
        problem: str,
        params: dict[str, Any] | None = None,
        *,
        seed: int = 0,
        method: str | None = None,
        order: str | None = None,
        alpha: float | None = None,
        n_ridges: int | None = None,
        overlap_threshold: float | None = None,
        max_depth: int | Literal["none"] | None = None,
        max_nodes: int | None = None,
        max_steps: int | None = None,
        wall_time_s: float | None = None,
        settings: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        accelerator: str = "cpu",
        name: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> schemas.JobPublic:
        """Submit a search of ``problem``; settings not given take the problem's defaults.

        ``max_depth="none"``: no depth limit (``None``: the problem's default).
        ``settings`` sets any other search setting by name. Without ``idempotency_key`` a
        fresh one is made, so the retries after a connection error never make two jobs.
        ``accelerator="gpu"`` has the job ridden by workers holding a GPU. ``name`` and
        ``tags`` label the job, to find it with :meth:`list`.
        """
        named = {
            "method": method,
            "order": order,
            "alpha": alpha,
            "n_ridges": n_ridges,
            "overlap_threshold": overlap_threshold,
            "max_depth": max_depth,
            "max_nodes": max_nodes,
            "max_steps": max_steps,
        }
        call = Calls.submit(
            problem,
            params,
            seed,
            wall_time_s,
            settings,
            named,
            idempotency_key,
            accelerator,
            name,
            tags,
        )
        return self._do(call)

    def get(self, job_id: int) -> schemas.JobPublic:
        """One job."""
        return self._do(Calls.get(job_id))

    def list(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        after: int | None = None,
        name: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
    ) -> schemas.JobsPublic:
        """A page of your jobs, newest first (pass ``page.next_after`` as ``after``).

        ``name`` matches any part of a job's name (any case); ``tag`` one of its tags,
        ``problem`` and ``status`` exactly.
        """
        filters = {"name": name, "tag": tag, "problem": problem}
        return self._do(Calls.list(status, limit, after, filters))

    def wait(
        self,
        job_id: int,
        *,
        timeout: float | None = None,
        poll_s: float = 0.5,
        progress: bool = False,
    ) -> schemas.JobPublic:
        """Poll until the job finishes (``TimeoutError`` after ``timeout`` seconds).

        ``progress=True`` shows a progress bar of its nodes and steps on stderr, the steps of
        rides in flight included (rich's bar; plain lines where rich is not installed).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with JobProgress(job_id, progress) as bar:
            while True:
                job = self.get(job_id)
                live = progress and not job.finished
                rides = self.rides(job_id) if live else []
                bar.update(job, sum(r.steps for r in rides))
                if job.finished:
                    return job
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
                time.sleep(poll_s)

    def cancel(self, job_id: int) -> schemas.JobPublic:
        """Cancel a queued or running job."""
        return self._do(Calls.cancel(job_id))

    def delete(self, job_id: int) -> None:
        """Delete a job and all it stored (a queued or running job is cancelled first)."""
        self._do(Calls.delete(job_id))

    def to_dataframe(self, job_id: int) -> DataFrame:
        """The finished tree, one row per node, as a pandas DataFrame (needs pandas).

        The columns of ``GET /jobs/{id}/nodes.csv``: ``id``, ``parent_id``, ``key``,
        ``depth``, ``eigenvalue``, ``loss``, ``steps``, ``end_reason``, ``is_solution`` and a
        ``metric.<name>`` column per metric.
        """
        return to_dataframe(self.nodes_csv(job_id))

    def nodes_csv(self, job_id: int) -> bytes:
        """The finished tree as CSV, one row per node (what :meth:`to_dataframe` reads)."""
        return self._do(Calls.nodes_csv(job_id))

    def extend(
        self,
        job_id: int,
        *,
        max_nodes: int | None = None,
        max_steps: int | None = None,
        wall_time_s: float | None = None,
    ) -> schemas.JobPublic:
        """Raise a job's budgets; a job a budget stopped runs on."""
        budgets = {"max_nodes": max_nodes, "max_steps": max_steps, "wall_time_s": wall_time_s}
        return self._do(Calls.extend(job_id, budgets))

    def tree(self, job_id: int, *, pending: bool = False) -> schemas.TreePublic:
        """The job's tree (with ``pending``: also the branches in flight)."""
        return self._do(Calls.tree(job_id, pending))

    def nodes(self, job_id: int, *, page_size: int = 500) -> Iterator[schemas.NodePublic]:
        """Every node of the finished tree in expansion order, fetched a page at a time."""
        after: int | None = None
        while True:
            page: schemas.NodesPublic = self._do(Calls.nodes(job_id, after, page_size))
            yield from page.items
            if page.next_after is None:
                return
            after = page.next_after

    def node(self, job_id: int, node_id: int) -> schemas.NodePublic:
        """One node."""
        return self._do(Calls.node(job_id, node_id))

    def solutions(self, job_id: int) -> builtins.list[schemas.SolutionPublic]:
        """The solutions, in the order the single-worker search finds them."""
        return self._do(Calls.solutions(job_id))

    def chosen(self, job_id: int) -> schemas.ChosenPublic:
        """The solution chosen on held-out data (highest ``validation_accuracy``), if any."""
        return self._do(Calls.chosen(job_id))

    def rides(self, job_id: int) -> builtins.list[schemas.RidePublic]:
        """The branches being ridden now, with their live steps and loss."""
        return self._do(Calls.rides(job_id))

    def params(self, job_id: int, node_id: int) -> Tensor:
        """θ where a done node's ride ended, as a torch tensor (needs torch installed)."""
        return to_tensor(self._do(Calls.params(job_id, node_id)))

    def problems(self) -> builtins.list[schemas.ProblemPublic]:
        """The installed problems with their parameter schemas."""
        return self._do(Calls.problems())

    def crossplay(
        self,
        problem: str,
        params: dict[str, Any] | None = None,
        *,
        replicates: int,
        fingerprints: int | None = None,
        seed: int = 0,
        wait: bool = True,
        timeout: float | None = None,
        poll_s: float = 0.5,
        idempotency_key: str | None = None,
    ) -> schemas.CrossplayReportPublic | schemas.CrossplayPublic:
        """Cross-play ``replicates`` RR runs of a two-player game on the service.

        With ``wait`` (default) poll until it finishes and return the report (as
        ``ridgerider crossplay --json`` writes it; a failed run raises ``ConflictError`` with
        the reason); without, return the accepted run (see :meth:`crossplay_status`).
        """
        call = XpCalls.submit(problem, params, replicates, fingerprints, seed, idempotency_key)
        run: schemas.CrossplayPublic = self._do(call)
        if not wait:
            return run
        deadline = None if timeout is None else time.monotonic() + timeout
        while not run.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"cross-play {run.id} still {run.status} after {timeout} s")
            time.sleep(poll_s)
            run = self.crossplay_status(run.id)
        return self.crossplay_result(run.id)

    def crossplay_status(self, run_id: int) -> schemas.CrossplayPublic:
        """A cross-play run's status and progress."""
        return self._do(XpCalls.get(run_id))

    def crossplay_result(self, run_id: int) -> schemas.CrossplayReportPublic:
        """A finished cross-play run's report (``ConflictError`` until it succeeded)."""
        return self._do(XpCalls.result(run_id))

    def crossplays(self, *, limit: int = 50, after: int | None = None) -> schemas.CrossplaysPublic:
        """A page of your cross-play runs, newest first."""
        return self._do(XpCalls.list(limit, after))

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
