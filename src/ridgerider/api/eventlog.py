"""A job's event stream as items: the cursor (the SSE ``id:``), and the archive reads.

:class:`Cursor` is what a client has been sent: tree ranks below ``nodes`` (the finished tree
is the prefix of one fixed order, see ``frontier.sequencer``, so it only grows) and job-log
events up to id ``event`` (status changes are appended in the same transaction as the
change, under the job row's lock, so one job's status events commit in id order). Text:
``"{nodes}-{event}"``, or ``"{rank}s-{event}"`` right after the ``solution`` event of rank
``rank``, which precedes that rank's ``node`` event. Both positions are durable: a cursor
means the same on any server process, before or after a restart.

:func:`head_of` and :func:`poll` are what a job's one poller reads (in a worker thread);
:func:`catch_up` is what a stream behind the poller reads for itself, once.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from fastapi.concurrency import run_in_threadpool

from ridgerider.api.convert import node_out, solution_out
from ridgerider.schemas.enums import JobStatus
from ridgerider.services.storage import Storage
from ridgerider.services.storage.records import EventRecord, JobRecord, NodeRecord, SolutionRecord

__all__ = [
    "END",
    "Cursor",
    "Item",
    "Poll",
    "catch_up",
    "head_of",
    "item_json",
    "node_items",
    "poll",
    "status_items",
]

PAGE = 1000
"""Nodes read at once (by the poller per poll, by a catching-up subscriber per page)."""
EVENT_PAGE = 1000
STATUS_KINDS = {s.value for s in JobStatus} | {"created"}
"""The job-log events streamed as ``status`` (``created`` is the job's first ``queued``)."""
_CURSOR = re.compile(r"(\d+)(s?)-(\d+)")


@dataclass(frozen=True)
class Cursor:
    """How far a client got: tree ranks below ``nodes`` and job events up to ``event``.

    ``solution``: the ``solution`` event of rank ``nodes`` was sent too (its ``node`` event not
    yet).
    """

    nodes: int = 0
    solution: bool = False
    event: int = 0

    def __str__(self) -> str:
        return f"{self.nodes}{'s' if self.solution else ''}-{self.event}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """A ``Last-Event-ID``; the start for ``None`` or anything unreadable."""
        m = _CURSOR.fullmatch((text or "").strip())
        if m is None:
            return cls()
        return cls(int(m[1]), m[2] == "s", int(m[3]))

    def behind(self, head: Cursor) -> bool:
        """Whether the archive holds something up to ``head`` that this cursor has not seen."""
        return self.nodes < head.nodes or self.event < head.event

    def join(self, head: Cursor) -> Cursor:
        """The cursor once everything up to ``head`` was sent too."""
        if head.nodes > self.nodes:
            return Cursor(head.nodes, head.solution, max(self.event, head.event))
        return replace(self, event=max(self.event, head.event))


@dataclass(frozen=True)
class Item:
    """One event of a job's stream; ``data`` is JSON text (encoded once for all subscribers)."""

    kind: str
    """``node``, ``solution``, ``status``, ``riding`` (not durable: no id) or ``end``."""
    data: str = ""
    rank: int | None = None
    event: int | None = None
    final: bool = False
    """A final status (the stream ends after it when the job is still finished)."""

    def after(self, c: Cursor) -> Cursor | None:
        """The cursor of a client at ``c`` once it has this item; ``None``: it has it already."""
        if self.kind == "solution":
            assert self.rank is not None
            if self.rank < c.nodes or (self.rank == c.nodes and c.solution):
                return None
            return Cursor(self.rank, True, c.event)
        if self.kind == "node":
            assert self.rank is not None
            return None if self.rank < c.nodes else Cursor(self.rank + 1, False, c.event)
        if self.event is not None:
            return None if self.event <= c.event else replace(c, event=self.event)
        return c


END = Item("end")


def item_json(value: Any) -> str:
    """Compact JSON (no NaN: the wire models have none)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def node_items(node: NodeRecord) -> list[Item]:
    """A tree node's events: its ``solution`` (for a solution leaf), then the ``node``."""
    assert node.rank is not None
    items = []
    if node.is_solution:
        sol = SolutionRecord(
            node_id=node.id,
            key=node.key,
            rank=node.rank,
            solution_key=node.solution_key,
            loss=node.loss if node.loss is not None else float("nan"),
            metrics=node.metrics or {},
        )
        items.append(
            Item("solution", item_json(solution_out(sol).model_dump(mode="json")), node.rank)
        )
    items.append(Item("node", item_json(node_out(node).model_dump(mode="json")), node.rank))
    return items


def _is_final(e: EventRecord) -> bool:
    """Whether a log event is a job's final status change."""
    return e.kind in STATUS_KINDS and e.kind != "created" and JobStatus(e.kind).finished


def status_items(events: list[EventRecord], job: JobRecord) -> list[Item]:
    """The ``status`` events among a job's log events (others only move the cursor)."""
    out = []
    for e in events:
        if e.kind not in STATUS_KINDS:
            continue
        status = JobStatus.QUEUED.value if e.kind == "created" else e.kind
        final = _is_final(e)
        data: dict[str, Any] = {
            "status": status,
            "stopped_by": job.stopped_by if final and status == job.status else None,
        }
        if e.data.get("error"):
            data["error"] = e.data["error"]
        out.append(Item("status", item_json(data), event=e.id, final=final))
    return out


def read_events(
    storage: Storage, job_id: int, after: int, until: int | None = None
) -> tuple[list[EventRecord], int]:
    """A job's log events with ids in ``(after, until]``, and the last id read."""
    out: list[EventRecord] = []
    cursor = after
    while True:
        page = storage.list_events(job_id, cursor=cursor, limit=EVENT_PAGE)
        for e in page.items:
            if until is not None and e.id > until:
                return out, cursor
            out.append(e)
            cursor = e.id
        if page.next_cursor is None:
            return out, cursor


def ordered(status: list[Item], nodes: list[Item]) -> list[Item]:
    """Status events up to the first final one, the nodes, then the rest (ids keep growing)."""
    cut = next((i for i, s in enumerate(status) if s.final), len(status))
    return [*status[:cut], *nodes, *status[cut:]]


@dataclass
class Poll:
    """What one poll found: new items, the new head, whether the job is over."""

    items: list[Item]
    head: Cursor
    finished: bool
    more: bool
    riding: tuple[int, int] | None


def head_of(storage: Storage, job_id: int) -> tuple[Cursor, bool] | None:
    """Where a job's archive is now (the feed starts there), and whether the job is over.

    The log is read before the job row, as :func:`poll` reads them: a final status in the log
    was committed before the job row read next, whose node count then covers every node (read
    the other way round, a job ending in between gave a head with the final status and not its
    last nodes, and streams caught up to it sent that status first). A job seen finished whose
    final status the log read missed has it logged by then: the log is read again.
    """
    events, last = read_events(storage, job_id, 0)
    job = storage.get_job(job_id)
    if job is None:
        return None
    if job.finished and not any(_is_final(e) for e in events):
        _, last = read_events(storage, job_id, last)
    return Cursor(job.nodes, False, last), job.finished


def poll(storage: Storage, job_id: int, head: Cursor) -> Poll | None:
    """The job's log after ``head``, the job, a page of its tree after ``head``, its rides.

    The order of the reads keeps a final status after every node: the log is read first, so a
    final status in it was committed before the job row read next, whose node count (and the
    nodes read after it) covers every node of the search. A job seen finished that the log read
    missed has its final status logged by then (with the transition): the log is read again. A
    final status is held back while more nodes than a page remain.
    """
    events, last = read_events(storage, job_id, head.event)
    job = storage.get_job(job_id)
    if job is None:
        return None
    if job.finished and not any(_is_final(e) for e in events):
        later, last = read_events(storage, job_id, last)
        events += later
    nodes: list[NodeRecord] = []
    more = False
    if job.nodes > head.nodes:
        page = storage.list_nodes(job_id, cursor=head.nodes, limit=PAGE)
        nodes, more = page.items, page.next_cursor is not None
    if more:  # the final status waits for the nodes of the next polls
        final = next((i for i, e in enumerate(events) if _is_final(e)), None)
        if final is not None:
            last = events[final - 1].id if final else head.event
            events = events[:final]
    riding = None
    if not job.finished:
        rides = storage.rides(job_id)
        riding = (len(rides), sum(r.steps for r in rides))
    node_part = [i for n in nodes for i in node_items(n)]
    top = nodes[-1].rank + 1 if nodes and nodes[-1].rank is not None else head.nodes
    return Poll(
        ordered(status_items(events, job), node_part),
        Cursor(top, False, last),
        job.finished and not more,
        more,
        riding,
    )


async def catch_up(
    storage: Storage, job_id: int, since: Cursor, until: Cursor
) -> AsyncIterator[Item]:
    """What the archive holds after ``since`` up to ``until`` (a subscriber's own reads)."""
    job = await run_in_threadpool(storage.get_job, job_id)
    if job is None:
        return
    events, _ = await run_in_threadpool(read_events, storage, job_id, since.event, until.event)
    status = status_items(events, job)
    cut = next((i for i, s in enumerate(status) if s.final), len(status))
    for item in status[:cut]:
        yield item
    rank = since.nodes
    while rank < until.nodes:
        page = await run_in_threadpool(storage.list_nodes, job_id, cursor=rank, limit=PAGE)
        start = rank
        for node in page.items:
            if node.rank is None or node.rank >= until.nodes:
                break
            for item in node_items(node):
                yield item
            rank = node.rank + 1
        if page.next_cursor is None or rank == start:
            break
    for item in status[cut:]:
        yield item
