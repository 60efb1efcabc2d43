"""Sequencer round: the time one ``dfs``/``priority`` round takes to join a chain of rides ahead.

With many workers riding ahead of a ``dfs`` or ``priority`` job, one sequencer round joins a
chain of ranks whose rides are already done, and every worker waits for it. This measures
that round alone, on a synthetic tree (``--fanout`` children down to ``--depth``, so a chain of
every rank but the root's): every branch is ridden ahead with the sequencer held back, then
one ``advance`` joins them all (``random`` rides ahead only the rows a sequencer round
planned, so it has no such chain here; ``speculation.py`` measures it). The same job shape is
timed with the plain store (about four statements a rank: ``sqlseq.SqlSeqStore``) and the
buffered one (a few statements a round: ``seqbuffer.BufferedSeqStore``), alternating, on a
fresh job each time; the figure is the median over ``--repeats``. Both give the same ranks
(checked here on every run).

    python benchmarks/sequencer_round.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/sequencer_round.py --quick      # a small tree, SQLite: checks that it runs

Timings depend on the machine's load: compare the stores within one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ridgerider.services.frontier import dbsequencer
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.frontier.seqbuffer import BufferedSeqStore
from ridgerider.services.frontier.sqlseq import SqlSeqStore
from ridgerider.services.storage.sql import SQLStorage
from synthetic_tree import start_on, synthetic, tree_nodes

STORES = ("plain", "buffered")


@dataclass
class Args:
    database_url: str | None = None
    orders: list[str] = field(default_factory=lambda: ["dfs", "priority"])
    fanout: int = 4
    depth: int = 4
    repeats: int = 5
    json: str | None = None


def one_round(url: str, order: str, store: str, args: Args) -> dict[str, Any]:
    """Ride a whole job ahead, then time the one round that joins it."""
    frontier = DatabaseFrontier(SQLStorage(url), speculation=10**6)
    made: list[SqlSeqStore] = []

    def chosen(sql: Any, conn: Any, job_id: int, order: str, *_: Any) -> SqlSeqStore:
        s = BufferedSeqStore(sql, conn, job_id, order) if store == "buffered" else None
        made.append(s or SqlSeqStore(sql, conn, job_id))
        return made[-1]

    real = dbsequencer.seq_store
    dbsequencer.seq_store = chosen  # type: ignore[assignment]
    try:
        job = start_on(frontier.storage, frontier, order)
        expand = functools.partial(synthetic, fanout=args.fanout, depth=args.depth)
        frontier._sequence = lambda *a, **k: None  # type: ignore[method-assign]
        while leases := frontier.claim("bench", 256, job_id=job):
            for lease in leases:
                frontier.complete(lease, expand(lease.branch))
        del frontier._sequence
        made.clear()
        t0 = time.perf_counter()
        frontier.advance(job)
        wall = time.perf_counter() - t0
        keys = [r.key for r in frontier.storage.iter_nodes(job)]
    finally:
        dbsequencer.seq_store = real
        frontier.close()
        frontier.storage.close()
    joined = len(keys) - 1
    statements = sum(getattr(s, "statements", 0) for s in made) if store == "buffered" else None
    return {"order": order, "store": store, "ranks": joined, "round_ms": 1e3 * wall,
            "ms_per_rank": 1e3 * wall / max(joined, 1), "statements": statements,
            "keys": keys}  # fmt: skip


def main(args: Args) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    res: dict[str, Any] = {
        "args": asdict(args),
        "tree_nodes": tree_nodes(args.fanout, args.depth),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": os.getloadavg(),
        },
        "rows": [],
    }
    try:
        for order in args.orders:
            runs: dict[str, list[dict[str, Any]]] = {s: [] for s in STORES}
            for i in range(args.repeats):
                for store in STORES:
                    url = args.database_url or f"sqlite:///{tmp.name}/{order}-{store}-{i}.db"
                    runs[store].append(one_round(url, order, store, args))
            trees = {tuple(r["keys"]) for rs in runs.values() for r in rs}
            assert len(trees) == 1, f"{order}: the stores gave different trees"
            med = {s: statistics.median(r["round_ms"] for r in rs) for s, rs in runs.items()}
            for store, rs in runs.items():
                row = {k: v for k, v in rs[0].items() if k not in ("keys", "round_ms")}
                row |= {"round_ms": med[store], "ms_per_rank": med[store] / max(row["ranks"], 1)}
                row["speedup_vs_plain"] = med["plain"] / med[store]
                res["rows"].append(row)
                print(f"{order:8s} {store:8s} {row['ranks']:5d} ranks in one round: "
                      f"{med[store]:8.1f} ms ({row['ms_per_rank']:.2f} ms a rank, "
                      f"{row['speedup_vs_plain']:.1f}x plain)", flush=True)  # fmt: skip
        res["machine"]["load_avg_end"] = os.getloadavg()
    finally:
        tmp.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small tree, two repeats")
    p.add_argument("--database-url", default=None)
    p.add_argument("--orders", nargs="+", choices=["dfs", "priority"], default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--json", default=None)
    ns = p.parse_args()
    a = Args(database_url=ns.database_url, json=ns.json)
    if ns.quick:
        a.fanout, a.depth, a.repeats = 2, 3, 2
    a.orders = ns.orders or a.orders
    a.repeats = ns.repeats or a.repeats
    main(a)
