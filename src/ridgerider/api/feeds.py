"""Job event feeds: one archive poller per job, fanned out to every stream of that job.

A stream (``GET /jobs/{id}/events``) joins its job's :class:`JobFeed`. The first one starts
the feed's poller task; it reads the archive every ``events_poll_s`` (the job, its new status
events, its new tree nodes, its rides: :func:`~.eventlog.poll`) in one worker-thread call and
hands the new items to every subscriber's bounded queue; the last stream to leave stops it.
So 100 browsers on one job cost one poll per period, not 100.

Each stream resumes from its own :class:`~.eventlog.Cursor` (its ``Last-Event-ID``). One
behind the feed (a fresh client, or a reconnect after a while) first catches up from the
archive itself (:func:`~.eventlog.catch_up`: pages of nodes, its events), then subscribes;
the "caught up" check and the subscription happen in the event loop with no await between,
so no item falls in between, and each stream skips what its cursor already covers, so
nothing comes twice. A subscriber that still has ``events_queue`` items waiting when the
poller brings more is dropped from the fan-out (the poller never waits for anyone) and its
stream ends with a ``reconnect`` event carrying its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from ridgerider.api.eventlog import END, Cursor, Item, catch_up, head_of, item_json, poll
from ridgerider.services.storage import Storage

__all__ = ["Feeds", "JobFeed", "Subscription"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscription:
    """One stream's place in a feed: its cursor and its bounded queue."""

    cursor: Cursor
    limit: int
    queue: deque[Item] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    """It fell more than ``limit`` items behind: out of the fan-out, told to reconnect."""

    def offer(self, items: list[Item]) -> bool:
        """Queue ``items``, unless ``limit`` items still wait from before (then: dropped).

        A queue so holds at most ``limit`` items plus one poll's (a page of nodes).
        """
        if len(self.queue) >= self.limit:
            self.dropped = True
            self.queue.clear()
        else:
            self.queue.extend(items)
        self.wake.set()
        return not self.dropped


@dataclass(eq=False)
class JobFeed:
    """A job's one poller and the subscriptions it fans out to."""

    job_id: int
    feeds: Feeds
    subscribers: set[Subscription] = field(default_factory=set)
    refs: int = 0
    """Streams using the feed (catching up or subscribed): the poller runs while any does."""
    head: Cursor | None = None
    """Everything up to here was published (``None``: not read yet, or the job is gone)."""
    ended: bool = False
    riding: Item | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def publish(self, items: list[Item]) -> None:
        """Hand items to every subscriber; the ones that overflow are dropped, never awaited."""
        if not items:
            return
        for sub in list(self.subscribers):
            if not sub.offer(items):
                self.subscribers.discard(sub)
                self.feeds.dropped += 1

    def end(self) -> None:
        """No more items: subscribers end their streams."""
        self.ended = True
        self.ready.set()
        self.publish([END])
        self.feeds.forget(self)

    def _riding(self, riding: tuple[int, int] | None) -> list[Item]:
        """A ``riding`` item if the rides in flight moved (kept for streams that join later)."""
        if riding is None:
            return []
        item = Item("riding", item_json({"rides": riding[0], "steps": riding[1]}))
        if self.riding is not None and item.data == self.riding.data:
            return []
        self.riding = item
        return [item]

    async def run(self) -> None:
        """Poll the archive until the job is over, it is gone, or nobody listens."""
        storage, period = self.feeds.storage, self.feeds.poll_s
        try:
            start = await run_in_threadpool(head_of, storage, self.job_id)
            self.feeds.polls += 1
            if start is None:
                return
            self.head, over = start
            self.ready.set()
            more = False
            while not over:
                if not more:  # a backlog of nodes is read a page after another, no pause
                    await asyncio.sleep(period)
                found = await run_in_threadpool(poll, storage, self.job_id, self.head)
                self.feeds.polls += 1
                if found is None:
                    return
                self.head, over, more = found.head, found.finished, found.more
                self.publish([*found.items, *self._riding(found.riding)])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event feed of job %d", self.job_id)
        finally:
            self.end()


class Feeds:
    """The app's job feeds (``Service.feeds``): at most one poller per job."""

    def __init__(self, storage: Storage, poll_s: float, queue: int) -> None:
        self.storage = storage
        self.poll_s = poll_s
        self.queue = queue
        self.feeds: dict[int, JobFeed] = {}
        self.polls = 0
        """Archive reads by pollers (each: one worker-thread call)."""
        self.dropped = 0
        """Subscribers dropped for falling behind."""

    @property
    def pollers(self) -> int:
        """Poller tasks running now."""
        feeds = tuple(self.feeds.values())  # one copy: a scrape reads from another thread
        return sum(1 for f in feeds if f.task is not None and not f.task.done())

    @property
    def subscribers(self) -> int:
        """Streams open now (catching up or subscribed)."""
        return sum(f.refs for f in tuple(self.feeds.values()))

    def forget(self, feed: JobFeed) -> None:
        """Take an ended feed out: the next subscriber of its job starts a new one."""
        if self.feeds.get(feed.job_id) is feed:
            del self.feeds[feed.job_id]

    @contextlib.asynccontextmanager
    async def join(self, job_id: int) -> AsyncIterator[JobFeed]:
        """The job's feed, its poller started for the first stream and stopped after the last."""
        feed = self.feeds.get(job_id)
        if feed is None:
            feed = self.feeds[job_id] = JobFeed(job_id, self)
            feed.task = asyncio.get_running_loop().create_task(feed.run())
        feed.refs += 1
        try:
            yield feed
        finally:
            feed.refs -= 1
            if feed.refs == 0:
                self.forget(feed)  # now: a stream opened meanwhile starts a fresh feed
                if feed.task is not None and not feed.task.done():
                    feed.task.cancel()

    async def stream(
        self, job_id: int, cursor: Cursor, deadline: float
    ) -> AsyncIterator[tuple[Item, Cursor]]:
        """A job's items after ``cursor`` with the cursor after each, until the job is over.

        Ends with an ``end`` item (job over, gone, or ``deadline`` of the loop's clock passed)
        or a ``reconnect`` item (this stream fell behind and was dropped).
        """
        loop = asyncio.get_running_loop()
        async with self.join(job_id) as feed:
            await feed.ready.wait()
            while feed.head is not None and cursor.behind(feed.head):
                until = feed.head  # the feed may move on meanwhile: then catch up again
                async for item in catch_up(self.storage, job_id, cursor, until):
                    after = item.after(cursor)
                    if after is not None:
                        cursor = after
                        yield item, cursor
                cursor = cursor.join(until)
            if feed.ended:  # caught up with a job that is over (or gone)
                return
            sub = Subscription(cursor, self.queue)
            feed.subscribers.add(sub)  # no await since the check above: nothing falls between
            try:
                if feed.riding is not None:
                    yield feed.riding, cursor
                while True:
                    while not sub.queue:
                        if sub.dropped:
                            yield (
                                Item("reconnect", item_json({"last_event_id": str(cursor)})),
                                cursor,
                            )
                            return
                        sub.wake.clear()
                        timeout = deadline - loop.time()
                        if timeout <= 0:
                            return
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(sub.wake.wait(), timeout)
                    item = sub.queue.popleft()
                    if item is END:
                        return
                    after = item.after(cursor)
                    if after is None:
                        continue
                    cursor = after
                    yield item, cursor
            finally:
                feed.subscribers.discard(sub)

    async def close(self) -> None:
        """Stop every poller (the app is shutting down)."""
        tasks = [f.task for f in self.feeds.values() if f.task is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
