"""The Redis-fronted frontier: Redis picks, the database decides.

Admitted waiting branches are indexed in Redis, one sorted set per job scored by rank, plus a
set of jobs with ready work. A claim pops the lowest ranks atomically with a Lua script (no
scans, no row locks to skip), then leases the popped rows in the database with a single
compare-and-set ``UPDATE … WHERE status = 'waiting'``; whatever the database refuses is dropped.
So Redis only ever makes claims faster: leases, fencing, completions and the sequencer stay in
the database (the source of truth), and the index can be thrown away at any time.

Recovery, all idempotent: a missing marker key (Redis restarted empty or was flushed) makes the
next claim rebuild the index from the database; popped entries are parked in a ``claiming`` set
and re-indexed by the reaper if the database still shows them waiting after a grace period (the
claimer died between pop and lease, or the database skipped a row another transaction held);
a claimer unparks the entries it leased in its next claim's script (only if still parked by
that same pop), so the reaper checks little more than the entries of dead claimers; ranks
admitted since the last sync are re-pushed (the admitting worker died between commit and push).
Keys are built inside the script, so this needs a single Redis (not Redis Cluster).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import redis
from sqlalchemy import select
from typing_extensions import override

from ridgerider.schemas.enums import JobStatus, NodeStatus
from ridgerider.services.frontier.base import Lease
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage
from ridgerider.services.storage.tables import JOBS, NODES

__all__ = ["RedisFrontier"]

n, j = NODES.c, JOBS.c
_RUNNING = select(j.id, j.admitted).where(j.status == JobStatus.RUNNING)
"""The running jobs and how many ranks each admitted."""

_CLAIM = """
for i = 5, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[3], ARGV[i])) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[3], ARGV[i])
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local t = redis.call('TIME')
local until_ms = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[4])
local k, out, jobs = tonumber(ARGV[1]), {}, nil
if ARGV[2] ~= '' then jobs = {ARGV[2]} else jobs = redis.call('ZRANGE', KEYS[2], 0, -1) end
for _, job in ipairs(jobs) do
  local ready = ARGV[3] .. ':ready:' .. job
  local got = redis.call('ZPOPMIN', ready, k - #out / 2)
  for i = 1, #got, 2 do
    out[#out + 1] = job
    out[#out + 1] = got[i]
    redis.call('ZADD', KEYS[3], until_ms, job .. ':' .. got[i])
  end
  if redis.call('EXISTS', ready) == 0 then redis.call('ZREM', KEYS[2], job) end
  if #out >= 2 * k then break end
end
if #out > 0 then out[#out + 1] = until_ms end
return out
"""

_TAKE_STALE = """
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local got = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
if #got > 0 then redis.call('ZREM', KEYS[1], unpack(got)) end
return got
"""


class RedisFrontier(DatabaseFrontier):
    """A :class:`DatabaseFrontier` whose claims are served from a Redis index.

    Args:
        storage: the SQL storage (source of truth).
        client: a ``redis.Redis`` (or ``fakeredis``) client.
        namespace: key prefix, so several archives can share one Redis.
        grace_s: how long a popped entry may wait for its database lease before the reaper
            checks it again.
    """

    def __init__(
        self,
        storage: SQLStorage,
        client: redis.Redis,
        *,
        namespace: str = "rr",
        lease_s: float | None = None,
        grace_s: float = 10.0,
    ) -> None:
        super().__init__(storage, lease_s=lease_s, speculation=0)  # claims: admitted only
        self.redis = client
        self.ns = namespace
        self.grace_ms = int(grace_s * 1000)
        self._claim = client.register_script(_CLAIM)
        self._acks: list[str] = []  # settled ``job:id`` entries still parked in ``claiming``
        self._acks_lock = threading.Lock()
        self._take_stale = client.register_script(_TAKE_STALE)
        self._accel: dict[int, str] = {}

    @classmethod
    def from_url(cls, storage: SQLStorage, url: str, **kwargs: Any) -> RedisFrontier:
        """Connect to ``redis://host:port/db``."""
        return cls(storage, redis.Redis.from_url(url), **kwargs)

    def _key(self, *parts: object) -> str:
        return ":".join([self.ns, *map(str, parts)])

    # -- claims ----------------------------------------------------------------------------

    @override
    def claim(
        self,
        worker: str,
        k: int = 1,
        *,
        job_id: int | None = None,
        lease_s: float | None = None,
        accelerator: str = "cpu",
    ) -> list[Lease]:
        if job_id is not None and self._accelerators([job_id]).get(job_id) != accelerator:
            return []  # another kind of worker's job: popping it would park its branches
        keys = [self._key("epoch"), self._jobs_key(accelerator), self._key("claiming")]
        for _ in range(3):  # entries the database refuses are stale: try the next ones
            with self._acks_lock:
                acks, self._acks = self._acks, []
            args = [k, "" if job_id is None else job_id, self.ns, self.grace_ms, *acks]
            popped = self._claim(keys=keys, args=args)
            if popped is None:
                if not self.rebuild():
                    return []
                continue
            if not popped:
                return []
            *pairs, parked_until = popped
            ids = [int(x) for x in pairs[1::2]]
            token = uuid.uuid4().hex
            params = {"worker": worker, "token": token, "ttl": lease_s or self.lease_s}
            params |= {"ids": ids if self.sql.pg else json.dumps(ids), "k": len(ids)}
            params["acc"] = accelerator
            leases = self._lease_rows((self.sql.claim_ids, params))
            with self._acks_lock:  # leased: the next claim takes them out of ``claiming``
                for x in leases:
                    self._acks += [f"{x.job_id}:{x.node_id}", parked_until]
            if leases:
                return leases
        return []

    def _jobs_key(self, accelerator: str) -> str:
        """The set of jobs with ready branches, one per accelerator (``jobs``: CPU jobs)."""
        return self._key("jobs") if accelerator == "cpu" else self._key("jobs", accelerator)

    def _accelerators(self, job_ids: Iterable[int]) -> dict[int, str]:
        """Each job's accelerator (it never changes: read once per job and process)."""
        missing = [i for i in job_ids if i not in self._accel]
        if missing:
            with self.db.session(write=False) as s:
                rows = s.connection().execute(select(j.id, j.accelerator).where(j.id.in_(missing)))
                self._accel.update({r.id: r.accelerator for r in rows})
        return self._accel

    def _index(self, rows: Iterable[Any]) -> None:
        """Add ``(job_id, id, rank)`` rows to the ready sets."""
        ready: dict[int, dict[str, int]] = {}
        for r in rows:
            ready.setdefault(r.job_id, {})[str(r.id)] = r.rank
        if not ready:
            return
        accel = self._accelerators(ready)
        pipe = self.redis.pipeline(transaction=False)
        for job_id, members in ready.items():  # one ZADD per job
            pipe.zadd(self._key("ready", job_id), members)
            pipe.zadd(self._jobs_key(accel.get(job_id, "cpu")), {str(job_id): job_id})
        pipe.execute()

    def _waiting(self, *where: Any) -> list[Any]:
        stmt = (
            select(n.job_id, n.id, n.rank)
            .join(JOBS, j.id == n.job_id)
            .where(
                n.status == NodeStatus.WAITING,
                j.status == JobStatus.RUNNING,
                n.rank < j.admitted,
                *where,
            )
        )
        with self.db.session(write=False) as s:
            return list(s.connection().execute(stmt))

    _rows = True

    @override
    def _admitted(self, job_id: int, start: int, stop: int, rows: list[Any] | None = None) -> None:
        if rows is None:
            with self.db.session(write=False) as s:
                conn = s.connection()
                rows = list(self.sql.waiting_range(conn, job=job_id, start=start, stop=stop))
        self._index(rows)

    @override
    def reindex(self, job_id: int) -> None:
        self._index(self._waiting(n.job_id == job_id))

    @override
    def _requeued(self, rows: list[Any]) -> None:
        self._index(r for r in rows if r.status == NodeStatus.WAITING and r.rank is not None)

    # -- recovery --------------------------------------------------------------------------

    def rebuild(self) -> bool:
        """Re-index every admitted waiting branch; ``False`` if another process is at it."""
        lock = self._key("rebuild")
        if not self.redis.set(lock, uuid.uuid4().hex, nx=True, px=60_000):
            return False
        try:
            with self.db.session(write=False) as s:
                running = list(s.connection().execute(_RUNNING))
            for job_id, _ in running:
                self._index(self._waiting(n.job_id == job_id))
            pipe = self.redis.pipeline(transaction=False)
            for job_id, admitted in running:
                pipe.set(self._key("synced", job_id), admitted)
            pipe.set(self._key("epoch"), uuid.uuid4().hex)
            pipe.execute()
            for job_id, _ in running:
                self.storage.add_event(job_id, "redis_rebuilt", {})
            return True
        finally:
            self.redis.delete(lock)

    @override
    def tick(self) -> None:
        super().tick()
        if not self.redis.exists(self._key("epoch")):
            self.rebuild()
            return
        # One process per second reconciles; the others' reapers skip (same work, same result).
        if not self.redis.set(self._key("tick"), os.getpid(), nx=True, px=1000):
            return
        stale = self._take_stale(keys=[self._key("claiming")], args=[1000])
        if stale:
            ids = [int(x.split(b":")[1]) for x in stale]
            self._index(self._waiting(n.id.in_(ids)))
        self._sync()

    def _sync(self) -> None:
        """Re-push ranks admitted since the last sync (covers a death after commit)."""
        with self.db.session(write=False) as s:
            running = list(s.connection().execute(_RUNNING))
        if not running:
            return
        synced = self.redis.mget([self._key("synced", job_id) for job_id, _ in running])
        for (job_id, admitted), mark in zip(running, synced, strict=True):
            start = int(mark or 0)
            if start < admitted:
                self._index(self._waiting(n.job_id == job_id, n.rank >= start))
                self.redis.set(self._key("synced", job_id), admitted)
