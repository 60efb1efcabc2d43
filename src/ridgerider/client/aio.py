"""The asyncio client: the same calls as :class:`~ridgerider.client.Client`, awaited."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

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

__all__ = ["AsyncClient"]


class AsyncClient:
    """An asyncio client of a ridgerider service.

    Arguments as for ``Client``; ``sleep`` is awaited (``asyncio.sleep`` by default).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        http: httpx.AsyncClient | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        self.backoff = backoff or Backoff(retries=retries)
        self.retries = self.backoff.retries
        self._sleep = sleep

    @classmethod
    def from_env(cls, **kwargs: Any) -> AsyncClient:
        """A client of ``$RIDGERIDER_URL`` with ``$RIDGERIDER_TOKEN``.

        The URL defaults to ``http://127.0.0.1:8000``, the token to none; ``kwargs`` as for the
        constructor.
        """
        url, token = env_connection()
        return cls(url, token, **kwargs)

    async def _do(self, call: Call) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.http.send(call.request(self.http))
            except httpx.TransportError:
                delay = self.backoff.after_error(call, attempt)
                if delay is None:
                    raise
            else:
                delay = self.backoff.after_response(call, response, attempt)
                if delay is None:
                    return unwrap(response, call.model)
            await self._sleep(delay)

    async def submit(
        self,
        problem: str,
        params: dict[str, Any] | None = None,
        *,
        seed: int = 0,
        wall_time_s: float | None = None,
        settings: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        accelerator: str = "cpu",
        name: str | None = None,
        tags: Sequence[str] | None = None,
        **named: Any,
    ) -> schemas.JobPublic:
        """Submit a search; ``named``: search settings as for ``Client.submit``.

        For example ``method``, ``order``, ``alpha``, ``n_ridges``, ``max_nodes``.
        """
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
        return await self._do(call)

    async def get(self, job_id: int) -> schemas.JobPublic:
        """One job."""
        return await self._do(Calls.get(job_id))

    async def list(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        after: int | None = None,
        name: str | None = None,
        tag: str | None = None,
        problem: str | None = None,
    ) -> schemas.JobsPublic:
        """A page of your jobs, newest first, filtered as ``Client.list``."""
        filters = {"name": name, "tag": tag, "problem": problem}
        return await self._do(Calls.list(status, limit, after, filters))

    async def wait(
        self,
        job_id: int,
        *,
        timeout: float | None = None,
        poll_s: float = 0.5,
        progress: bool = False,
    ) -> schemas.JobPublic:
        """Poll until the job finishes (``TimeoutError`` after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with JobProgress(job_id, progress) as bar:
            while True:
                job = await self.get(job_id)
                live = progress and not job.finished
                rides = await self.rides(job_id) if live else []
                bar.update(job, sum(r.steps for r in rides))
                if job.finished:
                    return job
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
                await asyncio.sleep(poll_s)

    async def cancel(self, job_id: int) -> schemas.JobPublic:
        """Cancel a queued or running job."""
        return await self._do(Calls.cancel(job_id))

    async def delete(self, job_id: int) -> None:
        """Delete a job and all it stored (a queued or running job is cancelled first)."""
        await self._do(Calls.delete(job_id))

    async def to_dataframe(self, job_id: int) -> DataFrame:
        """The finished tree, one row per node, as a pandas DataFrame (needs pandas)."""
        return to_dataframe(await self.nodes_csv(job_id))

    async def nodes_csv(self, job_id: int) -> bytes:
        """The finished tree as CSV, one row per node (what :meth:`to_dataframe` reads)."""
        return await self._do(Calls.nodes_csv(job_id))

    async def extend(self, job_id: int, **budgets: Any) -> schemas.JobPublic:
        """Raise budgets: ``max_nodes``, ``max_steps``, ``wall_time_s``."""
        return await self._do(Calls.extend(job_id, budgets))

    async def tree(self, job_id: int, *, pending: bool = False) -> schemas.TreePublic:
        """The job's tree."""
        return await self._do(Calls.tree(job_id, pending))

    async def nodes(
        self, job_id: int, *, page_size: int = 500
    ) -> AsyncIterator[schemas.NodePublic]:
        """Every node of the finished tree, a page at a time."""
        after: int | None = None
        while True:
            page: schemas.NodesPublic = await self._do(Calls.nodes(job_id, after, page_size))
            for node in page.items:
                yield node
            if page.next_after is None:
                return
            after = page.next_after

    async def node(self, job_id: int, node_id: int) -> schemas.NodePublic:
        """One node."""
        return await self._do(Calls.node(job_id, node_id))

    async def solutions(self, job_id: int) -> builtins.list[schemas.SolutionPublic]:
        """The solutions in expansion order."""
        return await self._do(Calls.solutions(job_id))

    async def chosen(self, job_id: int) -> schemas.ChosenPublic:
        """The solution chosen on held-out data (highest ``validation_accuracy``), if any."""
        return await self._do(Calls.chosen(job_id))

    async def rides(self, job_id: int) -> builtins.list[schemas.RidePublic]:
        """The branches being ridden now, with their live steps and loss."""
        return await self._do(Calls.rides(job_id))

    async def params(self, job_id: int, node_id: int) -> Tensor:
        """θ of a done node as a torch tensor."""
        return to_tensor(await self._do(Calls.params(job_id, node_id)))

    async def problems(self) -> builtins.list[schemas.ProblemPublic]:
        """The installed problems."""
        return await self._do(Calls.problems())

    async def crossplay(
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
        """Cross-play ``replicates`` RR runs of a two-player game (as ``Client.crossplay``)."""
        call = XpCalls.submit(problem, params, replicates, fingerprints, seed, idempotency_key)
        run: schemas.CrossplayPublic = await self._do(call)
        if not wait:
            return run
        deadline = None if timeout is None else time.monotonic() + timeout
        while not run.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"cross-play {run.id} still {run.status} after {timeout} s")
            await asyncio.sleep(poll_s)
            run = await self.crossplay_status(run.id)
        return await self.crossplay_result(run.id)

    async def crossplay_status(self, run_id: int) -> schemas.CrossplayPublic:
        """A cross-play run's status and progress."""
        return await self._do(XpCalls.get(run_id))

    async def crossplay_result(self, run_id: int) -> schemas.CrossplayReportPublic:
        """A finished cross-play run's report (``ConflictError`` until it succeeded)."""
        return await self._do(XpCalls.result(run_id))

    async def crossplays(
        self, *, limit: int = 50, after: int | None = None
    ) -> schemas.CrossplaysPublic:
        """A page of your cross-play runs, newest first."""
        return await self._do(XpCalls.list(limit, after))

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
