"""Frontier throughput: claim-and-complete cycles per second with no compute.

A cycle is one branch claimed with a lease, its node written, its children inserted and the
branch completed (fenced by its lease), as :class:`~ridgerider.workers.worker.Worker` does:
each worker process loops ``claim(k) → complete_many`` (a worker with ``batch = k``) on one BFS
job whose synthetic tree never runs out (every node has two children), so only the frontier is
measured: SQLite (single writer), PostgreSQL (``FOR UPDATE SKIP LOCKED``) and PostgreSQL +
Redis (Lua claims), for 1, 4 and 16 processes. Beside it, against the same PostgreSQL server,
Optuna's enqueue / ask / tell cycle with its RDB storage (one trial queued, handed out and
finished), which is what a durable trial queue costs in Optuna, and (``--backends plain``) a
minimal fenced ``SKIP LOCKED`` queue in plain SQL (``plain_worker``): the floor of what a
database queue costs, without ranks, budgets, a sequencer or leases that expire.

Each row also reports the CPU one cycle cost: in the worker processes, in the PostgreSQL
backends serving them, and in the Redis server (the whole server: a bound where it is shared).
On a shared machine the rate depends on the share of the cores the run gets; these do not.

    python benchmarks/frontier.py --seconds 5 --json benchmarks/results/frontier.json

Every process uses one torch thread; the machine's cores are shared, so compare rows of one run.
The default claim is 32 branches, what an adaptive worker (``Worker(batch="auto")``) settles on
when branches cost nothing; ``--batch 8`` or ``--batch 1`` show what the claim size buys.

Two experiments on the PostgreSQL rows, each changing one thing: ``--drop NAME …`` drops
indexes and constraints of ``nodes`` from the scratch database first (what their upkeep costs
a cycle), ``--plan-cache-mode auto`` lets PostgreSQL keep generic plans of the prepared hot
statements (what planning costs a cycle; the product forces custom plans, see
``storage.session``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
import redis
import torch
from psycopg import sql as pgsql
from sqlalchemy.engine import make_url

from ridgerider.core.branch import Branch, Node
from ridgerider.core.expand import Expansion
from ridgerider.core.settings import RRSettings
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.redis import RedisFrontier
from ridgerider.services.storage.records import JobSpec
from ridgerider.services.storage.sql import SQLStorage

torch.set_num_threads(1)
CTX = mp.get_context("fork")
THETA = torch.zeros(2, dtype=torch.float64)


@dataclass
class Args:
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    backends: list[str] = field(default_factory=lambda: ["sqlite", "postgres", "postgres+redis"])
    workers: list[int] = field(default_factory=lambda: [1, 4, 16])
    seconds: float = 5.0
    """Measured window per configuration (after a warm-up of a second)."""
    batch: int = 32
    """Branches claimed at once: what ``Worker(batch="auto")`` claims when branches cost nothing
    (``AdaptiveBatch.max_batch``)."""
    complete_batch: bool = True
    """Complete a claim's branches in one transaction (``complete_many``), else one by one."""
    optuna: bool = True
    drop: list[str] = field(default_factory=list)
    """Indexes and constraints of ``nodes`` dropped from the scratch database before the
    ridgerider rows (an experiment: what their upkeep costs a cycle; nothing else changes)."""
    plan_cache_mode: str | None = None
    """PostgreSQL's ``plan_cache_mode`` for ridgerider's connections instead of the product's
    ``force_custom_plan`` (an experiment: what planning costs a cycle)."""
    json: str | None = None


def expansion(branch: Branch) -> Expansion:
    """Two children, forever: the tree never runs out during a measurement."""
    kids = [
        Branch(THETA, THETA, -1.0, (*branch.fingerprint, (0, s)), branch.seed + s, -1.0)
        for s in (1, -1)
    ]
    node = Node(
        branch.fingerprint,
        THETA,
        branch.eigenvalue,
        None,
        0.0,
        -1.0,
        1,
        "convex",
        [-1.0],
        {},
        [],
        2,
        False,
        False,
    )
    return Expansion(node, kids)


def build(backend: str, url: str, redis_url: str, ns: str) -> Frontier:
    store = SQLStorage(url, migrate=False)
    if backend == "postgres+redis":
        return RedisFrontier.from_url(store, redis_url, namespace=ns)
    return DatabaseFrontier(store)


def worker(
    backend: str,
    url: str,
    args: Args,
    ns: str,
    job: int,
    batch_complete: bool,
    go: Any,
    stop: Any,
    window: Any,
    out: Any,
) -> None:
    torch.set_num_threads(1)
    frontier = build(backend, url, args.redis_url, ns)
    frontier.start_reaper(1.0)
    me = f"bench:{os.getpid()}"
    stamps: list[float] = []
    cpu = 0.0  # this process's CPU time spent on cycles that started inside the window
    go.wait()
    while not stop.is_set():
        t, c = time.time(), time.process_time()
        leases = frontier.claim(me, args.batch, job_id=job)
        if not leases:
            time.sleep(0.005)  # as a worker would: do not spin on an empty frontier
            continue
        if batch_complete:
            done = frontier.complete_many([(x, expansion(x.branch)) for x in leases])
            stamps += [time.time()] * sum(done)
        else:
            for lease in leases:
                if frontier.complete(lease, expansion(lease.branch)):
                    stamps.append(time.time())
        if window[0] <= t and (not window[1] or t < window[1]):
            cpu += time.process_time() - c
    lo, hi = window[0], window[1]
    out.put((sum(lo <= t < hi for t in stamps), cpu))


def backend_cpu(admin_url: str, database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``database`` (same host)."""
    u = make_url(admin_url)
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, autocommit=True
    ) as c:
        pids = [r[0] for r in c.execute(SESSIONS, [database])]
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile, or the server is not on this host
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


SESSIONS = "SELECT pid FROM pg_stat_activity WHERE datname = %s"

PLAIN_SCHEMA = """
CREATE TABLE plain_queue (
    id bigserial PRIMARY KEY,
    parent bigint,
    status text NOT NULL DEFAULT 'waiting',
    lease text,
    leased_until timestamptz,
    payload bytea NOT NULL,
    result bytea
);
CREATE INDEX plain_waiting ON plain_queue (id) WHERE status = 'waiting';
INSERT INTO plain_queue (payload) VALUES ('\\x00');
"""
PLAIN_CLAIM = """
UPDATE plain_queue SET status = 'leased', lease = %(me)s, leased_until = now() + interval '60 s'
WHERE id IN (SELECT id FROM plain_queue WHERE status = 'waiting' ORDER BY id
             LIMIT %(k)s FOR UPDATE SKIP LOCKED)
RETURNING id, payload
"""
PLAIN_COMPLETE = """
WITH done AS (
    UPDATE plain_queue SET status = 'done', result = %(result)s, lease = NULL
    WHERE id = ANY(%(ids)s) AND lease = %(me)s AND status = 'leased' RETURNING id
)
INSERT INTO plain_queue (parent, payload)
SELECT done.id, %(payload)s FROM done CROSS JOIN generate_series(1, 2)
RETURNING parent
"""


def plain_worker(url: str, k: int, go: Any, stop: Any, window: Any, out: Any) -> None:
    """The baseline: a minimal fenced ``FOR UPDATE SKIP LOCKED`` queue, psycopg only.

    A cycle is what ridgerider's is, less its guarantees beyond the fence: claim ``k`` rows
    with a lease (one transaction), then in one transaction mark them done if the lease still
    holds and insert two children each. No ranks, budgets, sequencer, heartbeats or reaper.
    """
    payload = bytes(16 * 2 + 64)  # θ and ridge of two float64 parameters, and a header
    me = f"plain:{os.getpid()}"
    stamps: list[float] = []
    cpu = 0.0
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        go.wait()
        while not stop.is_set():
            t, c = time.time(), time.process_time()
            with conn.transaction():
                rows = conn.execute(PLAIN_CLAIM, {"me": me, "k": k}).fetchall()
            if not rows:
                time.sleep(0.005)
                continue
            with conn.transaction():
                ids = [r[0] for r in rows]
                args = {"me": me, "ids": ids, "result": payload, "payload": payload}
                done = {r[0] for r in conn.execute(PLAIN_COMPLETE, args).fetchall()}
            stamps += [time.time()] * len(done)
            if window[0] <= t and (not window[1] or t < window[1]):
                cpu += time.process_time() - c
    out.put((sum(window[0] <= t < window[1] for t in stamps), cpu))


def measure(
    target: Any, n: int, seconds: float, extra: tuple[Any, ...], server: Any
) -> dict[str, float]:
    """Run ``n`` processes of ``target``: completions per second inside the window, and the
    CPU each one cost (microseconds): in the worker processes, in the PostgreSQL backends
    serving them (``server()`` reads their CPU seconds) and in the whole Redis server."""
    go, stop, window, out = CTX.Event(), CTX.Event(), CTX.Array("d", 2), CTX.Queue()
    procs = [CTX.Process(target=target, args=(*extra, go, stop, window, out)) for _ in range(n)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    go.set()
    time.sleep(1.0)  # warm-up
    pg0, redis0 = server(), redis_cpu()
    window[0] = time.time()
    time.sleep(seconds)
    window[1] = time.time()
    pg1, redis1 = server(), redis_cpu()
    stop.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    done = max(sum(r[0] for r in results), 1)
    return {
        "cycles_per_s": sum(r[0] for r in results) / (window[1] - window[0]),
        "client_cpu_us": 1e6 * sum(r[1] for r in results) / done,
        "postgres_cpu_us": 1e6 * (pg1 - pg0) / done,
        "redis_cpu_us": 1e6 * (redis1 - redis0) / done,
    }


REDIS_URL = Args.redis_url


def redis_cpu() -> float:
    """CPU seconds of the Redis server so far (all its clients: on a shared server, a bound)."""
    try:
        info = redis.Redis.from_url(REDIS_URL).info("cpu")
    except redis.RedisError:
        return 0.0
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def new_job(frontier: Frontier) -> int:
    spec = JobSpec(
        problem="toy2d",
        params={},
        seed=0,
        settings=RRSettings(
            order="bfs", max_nodes=10**9, max_steps=10**12, max_depth=10**6
        ).to_dict(),
        mis={"loss": 0.0, "grad_norm": 0.0, "negative_eigenvalues": 1},
        lease_s=60.0,
    )
    job = frontier.storage.create_job(spec, Branch(THETA, None, None, (), 0, 0.0))
    frontier.storage.transition(job.id, "running")
    frontier.advance(job.id)
    return job.id


def optuna_worker(url: str, study_name: str, go: Any, stop: Any, window: Any, out: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=study_name, storage=url)
    stamps: list[float] = []
    cpu = 0.0
    go.wait()
    i = 0
    while not stop.is_set():
        t, c = time.time(), time.process_time()
        study.enqueue_trial({"x": float(i)}, skip_if_exists=False)
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", -1e9, 1e9))
        stamps.append(time.time())
        if window[0] <= t and (not window[1] or t < window[1]):
            cpu += time.process_time() - c
        i += 1
    out.put((sum(window[0] <= t < window[1] for t in stamps), cpu))


class PgDatabase:
    """A scratch database on the server, dropped afterwards."""

    def __init__(self, url: str, name: str) -> None:
        self.admin = make_url(url)
        self.name = name
        self.url = self.admin.set(database=name).render_as_string(hide_password=False)

    def _exec(self, sql: str) -> None:
        u = self.admin
        with psycopg.connect(
            host=u.host,
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            dbname=u.database,
            autocommit=True,
        ) as c:
            c.execute(sql)

    def __enter__(self) -> str:
        self._exec(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._exec(f'CREATE DATABASE "{self.name}"')
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._exec(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def drop_from_nodes(url: str, names: list[str]) -> list[str]:
    """Drop indexes and constraints of ``nodes`` by name (each must exist); the indexes left."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as c:
        for name in names:
            con = c.execute(
                "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = 'nodes'::regclass",
                (name,),
            ).fetchone()
            if con is not None:
                stmt = pgsql.SQL("ALTER TABLE nodes DROP CONSTRAINT {}")
            else:
                stmt = pgsql.SQL("DROP INDEX {}")  # fails loudly if there is no such index
            c.execute(stmt.format(pgsql.Identifier(name)))
        left = c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'nodes'").fetchall()
    return sorted(r[0] for r in left)


def main(args: Args) -> dict[str, Any]:
    results: dict[str, Any] = {
        "torch_threads": 1,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_before": os.getloadavg(),
        "batch": args.batch,
        "seconds": args.seconds,
        "dropped": args.drop,
        "plan_cache_mode": args.plan_cache_mode or "force_custom_plan",
        "cycles_per_s": {},
    }
    tag = f"rr_bench_{os.getpid()}"
    admin = args.postgres_url
    global REDIS_URL
    REDIS_URL = args.redis_url
    optuna_db = PgDatabase(args.postgres_url, f"{tag}_optuna")  # same server, its own schema
    with (
        tempfile.TemporaryDirectory() as tmp,
        PgDatabase(args.postgres_url, tag) as pg,
        optuna_db as optuna_url,
    ):
        ours = pg  # ridgerider's connections: the URL's options override the product's
        if args.plan_cache_mode:
            mode = {"options": f"-c plan_cache_mode={args.plan_cache_mode}"}
            ours = make_url(pg).update_query_dict(mode).render_as_string(hide_password=False)
        if args.drop:  # migrated once here: the rows' own migrations then find it at head
            SQLStorage(pg).close()
            results["nodes_indexes"] = drop_from_nodes(pg, args.drop)
        runs = [(b, n, args.complete_batch) for b in args.backends for n in args.workers]
        if args.complete_batch and "postgres+redis" in args.backends:
            runs.append(("postgres+redis", max(args.workers), False))  # one commit per branch
        for backend, n, batched in runs:
            if backend == "plain":
                plain_url = pg.replace("+psycopg", "")
                with psycopg.connect(plain_url, autocommit=True) as c:
                    c.execute("DROP TABLE IF EXISTS plain_queue")
                    c.execute(PLAIN_SCHEMA)
                server = lambda: backend_cpu(admin, tag)  # noqa: E731
                got = measure(plain_worker, n, args.seconds, (plain_url, args.batch), server)
                record(results, f"plain/{n}", got)
                continue
            url = f"sqlite:///{tmp}/{backend}-{n}.db" if backend == "sqlite" else ours
            ns = f"{tag}:{uuid.uuid4().hex[:6]}"
            SQLStorage(url).close()  # migrate
            frontier = build(backend, url, args.redis_url, ns)
            job = new_job(frontier)
            server = (lambda: 0.0) if backend == "sqlite" else (lambda: backend_cpu(admin, tag))
            got = measure(worker, n, args.seconds, (backend, url, args, ns, job, batched), server)
            label = f"{backend}/{n}" + ("" if batched else "/one-by-one")
            record(results, label, got)
            # Later rows share the database: a job left running would keep their reapers busy.
            frontier.storage.transition(job, "cancelled")
            if backend == "postgres+redis":
                frontier.redis.delete(*frontier.redis.keys(f"{ns}:*") or [f"{ns}:none"])
            frontier.close()
        if args.optuna:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.ERROR)
            for n in args.workers:
                name = f"bench-{n}"
                optuna.create_study(study_name=name, storage=optuna_url)
                server = lambda: backend_cpu(admin, f"{tag}_optuna")  # noqa: E731
                got = measure(optuna_worker, n, args.seconds, (optuna_url, name), server)
                record(results, f"optuna/{n}", got)
    rates = results["cycles_per_s"]
    results["load_avg_after"] = os.getloadavg()
    for n in args.workers:
        for backend in ("postgres", "postgres+redis", "sqlite"):
            if f"plain/{n}" in rates and f"{backend}/{n}" in rates:
                ratio = rates[f"{backend}/{n}"] / max(rates[f"plain/{n}"], 1e-9)
                results[f"ratio_vs_plain/{backend}/{n}"] = round(ratio, 3)
                print(f"{backend} / plain queue with {n} workers: {ratio:.3f}x")
    for n in args.workers:
        if f"optuna/{n}" in rates and f"postgres+redis/{n}" in rates:
            ratio = rates[f"postgres+redis/{n}"] / max(rates[f"optuna/{n}"], 1e-9)
            results[f"ratio_vs_optuna/{n}"] = round(ratio, 1)
            print(f"postgres+redis / optuna with {n} workers: {ratio:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


def record(results: dict[str, Any], label: str, got: dict[str, float]) -> None:
    """Keep and print one row."""
    results["cycles_per_s"][label] = round(got["cycles_per_s"], 1)
    results.setdefault("cpu_us_per_cycle", {})[label] = {
        k.removesuffix("_cpu_us"): round(v) for k, v in got.items() if k.endswith("_cpu_us")
    }
    cpu = " ".join(f"{k[:-7]} {v:6.0f}" for k, v in got.items() if k.endswith("_cpu_us"))
    print(f"{label:>32} {got['cycles_per_s']:9.1f} cycles/s   CPU µs/cycle: {cpu}", flush=True)


def parse() -> Args:
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--postgres-url", default=d.postgres_url)
    p.add_argument("--redis-url", default=d.redis_url)
    p.add_argument("--backends", nargs="+", default=d.backends)
    p.add_argument("--workers", nargs="+", type=int, default=d.workers)
    p.add_argument("--seconds", type=float, default=d.seconds)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--one-by-one", dest="complete_batch", action="store_false")
    p.add_argument("--no-optuna", dest="optuna", action="store_false")
    p.add_argument("--drop", nargs="+", default=[], help="indexes/constraints of nodes to drop")
    p.add_argument("--plan-cache-mode", default=None, choices=["auto", "force_generic_plan"])
    p.add_argument("--json", default=None)
    return Args(**vars(p.parse_args()))


if __name__ == "__main__":
    print(json.dumps(asdict(parse()) | {"results": main(parse())}, indent=2, default=str))
