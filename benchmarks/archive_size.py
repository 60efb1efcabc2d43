"""Archive size: bytes per finished node, the lean archive against the layout before it.

Runs real searches with ``ridgerider run`` (a subprocess per job, on a fresh database each) and
measures the database once the job has ended:

* ``tree-rl``: the paper's Fig. 2 settings (``--preset paper-fig2``: exact RR, BFS, N = 6, both
  signs, no depth limit) on a depth-``--depth`` tree, ``--nodes`` finished nodes (the step
  budget raised so that the node budget stops it);
* ``digits-mlp --method approx``: its default search (``mlp.TRAINING_SEARCH``) cut to
  ``--digits-nodes`` nodes, ``--digits-ride-steps`` ride steps and ``--digits-polish`` polish
  steps, with no depth limit (so ridden children branch again and leave unridden branches).

On SQLite: the file's size (the WAL checkpointed), its live pages (size less the free pages
that later writes reuse) and its size after ``VACUUM``. On PostgreSQL (a scratch database per
job, dropped after): ``pg_total_relation_size`` of every table (indexes and TOAST included), as
left (dead row versions included), after a plain ``VACUUM`` (autovacuum's work) and after
``VACUUM FULL``. Also the bytes of each kind of column, to show what remains.

``--jobs N`` runs N jobs one after another on each database (the size after each is kept, and
the figures are per node of all of them): what a database that serves many jobs keeps per
node, where later jobs fill the space the earlier ones freed.

``--landed-src`` runs the same jobs with the code before the lean archive (``git archive
f232fcf src | tar -x -C /tmp/landed``: its ``src/``), so "before" is measured, not estimated.

    python benchmarks/archive_size.py --landed-src /tmp/landed/src \
        --json benchmarks/results/archive_size.json
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    """What to run and where."""

    nodes: int = 10_000
    depth: int = 12
    digits_nodes: int = 4
    digits_ride_steps: int = 100
    digits_polish: int = 20
    jobs: int = 1
    """Jobs run one after another on each database (the size is read after each)."""
    cases: tuple[str, ...] = ("tree-rl", "digits-mlp")
    databases: tuple[str, ...] = ("sqlite", "postgres")
    pg_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    landed_src: str | None = None
    json: str | None = None
    out: str | None = None


def case_args(a: Args, case: str) -> list[str]:
    """``ridgerider run`` arguments of a case."""
    if case == "tree-rl":
        return [
            *("tree-rl", "--preset", "paper-fig2", "--set", f"depth={a.depth}"),
            *("--setting", "max_depth=none", "--max-nodes", str(a.nodes)),
            *("--max-steps", "1000000000"),
        ]
    return [
        *("digits-mlp", "--method", "approx", "--max-nodes", str(a.digits_nodes)),
        *("--setting", f"max_ride_steps={a.digits_ride_steps}"),
        *("--setting", f"polish_steps={a.digits_polish}", "--setting", "max_depth=none"),
    ]


def run_job(src: Path, case: list[str], url: str, report: Path) -> dict[str, Any]:
    """Run one job to its end with the code under ``src``; its ``--json`` report."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "ridgerider.cli", "run", *case, "--database-url", url]
    proc = subprocess.run(
        [*cmd, "--quiet", "--json", str(report)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(case)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(report.read_text())


_COLUMNS = """
SELECT status, count(*), sum({n}(branch_data)), sum({n}(theta_data)), sum({n}({t})),
       sum({n}({m}))
FROM nodes GROUP BY status ORDER BY status
"""


def _columns(rows: list[Any]) -> dict[str, dict[str, int]]:
    return {
        r[0]: {"rows": r[1], "branch": r[2] or 0, "theta": r[3] or 0, "trace": r[4] or 0,
               "metrics": r[5] or 0}
        for r in rows
    }  # fmt: skip


def measure_sqlite(path: Path) -> dict[str, Any]:
    """File size (WAL checkpointed), live pages, size after VACUUM, bytes per column."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    cols = _columns(conn.execute(_COLUMNS.format(n="length", t="trace", m="metrics")).fetchall())
    theta = conn.execute("SELECT max(length(theta_data)) FROM nodes").fetchone()[0]
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {
        "bytes": size,
        "live_bytes": size - free * page,
        "vacuumed_bytes": path.stat().st_size,
        "theta_bytes": theta,
        "columns": cols,
    }


_PG_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE c.relkind = 'r' AND s.nspname = current_schema()
"""


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def size_now(url: str) -> int:
    """Bytes of the database's files as they are (``sqlite:///…`` or PostgreSQL)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path, isolation_level=None) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute(_PG_SIZE).fetchone()[0])  # type: ignore[index]


def run_jobs(a: Args, src: Path, case: str, url: str, report: Path) -> tuple[int, list[int]]:
    """``a.jobs`` jobs of a case on one database: finished nodes, and the size after each."""
    nodes, sizes = 0, []
    for _ in range(a.jobs):
        out = run_job(src, case_args(a, case), url, report)
        nodes += out["nodes"]
        sizes.append(size_now(url))
    return nodes, sizes


def measure_pg(url: str) -> dict[str, Any]:
    """Total relation size of every table as left and after VACUUM FULL; bytes per column."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        size = conn.execute(_PG_SIZE).fetchone()[0]  # type: ignore[index]
        q = _COLUMNS.format(n="octet_length", t="trace::text", m="metrics::text")
        cols = _columns(conn.execute(q).fetchall())
        theta = conn.execute("SELECT max(octet_length(theta_data)) FROM nodes").fetchone()[0]  # type: ignore[index]
        conn.execute("VACUUM")  # what autovacuum does: dead versions reusable, tail returned
        plain = conn.execute(_PG_SIZE).fetchone()[0]  # type: ignore[index]
        conn.execute("VACUUM FULL")
        vacuumed = conn.execute(_PG_SIZE).fetchone()[0]  # type: ignore[index]
    return {"bytes": int(size), "vacuum_bytes": int(plain), "vacuumed_bytes": int(vacuumed),
            "theta_bytes": theta, "columns": cols}  # fmt: skip


def one(a: Args, case: str, db: str, code: str, src: Path, tmp: Path) -> dict[str, Any]:
    """Run a case on a database with one version of the code and measure the archive."""
    tag = f"{case}-{db}-{code}".replace(" ", "_")
    report = tmp / f"{tag}.json"
    t0 = time.perf_counter()
    if db == "sqlite":
        path = tmp / f"{tag}.db"
        nodes, sizes = run_jobs(a, src, case, f"sqlite:///{path}", report)
        size = measure_sqlite(path)
    else:
        import psycopg

        name = "rr_archive_size_" + tag.replace("-", "_")
        with psycopg.connect(a.pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = _with_db(a.pg_url, name)
            nodes, sizes = run_jobs(a, src, case, url, report)
            size = measure_pg(url)
        finally:
            with psycopg.connect(a.pg_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = json.loads(report.read_text())  # the last job's report
    row = {"case": case, "database": db, "code": code, "nodes": nodes}
    row |= {"status": out["status"], "stopped_by": out["stopped_by"]}
    row |= {"wall_s": round(time.perf_counter() - t0, 1), "jobs": a.jobs, **size}
    row["bytes_after_each_job"] = sizes
    for k in ("bytes", "live_bytes", "vacuum_bytes", "vacuumed_bytes"):
        if k in size:
            row[f"{k}_per_node"] = round(size[k] / nodes)
    print(json.dumps({k: v for k, v in row.items() if k != "columns"}), flush=True)
    return row


def main(a: Args) -> dict[str, Any]:
    """Every case on every database, before (``--landed-src``) and now."""
    codes = [("now", ROOT / "src")]
    if a.landed_src:
        codes.insert(0, ("before", Path(a.landed_src)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in a.cases:
            for db in a.databases:
                for code, src in codes:
                    rows.append(one(a, case, db, code, src, Path(tmp)))
    result = {"args": asdict(a), "rows": rows}
    for path in (a.json, a.out and str(Path(a.out) / "archive_size.json")):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(result, indent=1))
    return result


def parse(argv: list[str] | None = None) -> Args:
    """Command-line arguments as :class:`Args`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Args()
    for name in ("nodes", "depth", "digits_nodes", "digits_ride_steps", "digits_polish", "jobs"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    p.add_argument("--cases", default=",".join(d.cases), help="tree-rl,digits-mlp")
    p.add_argument("--databases", default=",".join(d.databases), help="sqlite,postgres")
    p.add_argument("--pg-url", default=d.pg_url)
    p.add_argument("--landed-src", default=None, help="the src/ of the code before, to compare")
    p.add_argument("--json", default=None)
    p.add_argument("--out", default=None, help="a folder for archive_size.json")
    ns = p.parse_args(argv)
    return Args(
        nodes=ns.nodes,
        depth=ns.depth,
        digits_nodes=ns.digits_nodes,
        digits_ride_steps=ns.digits_ride_steps,
        digits_polish=ns.digits_polish,
        jobs=ns.jobs,
        cases=tuple(ns.cases.split(",")),
        databases=tuple(ns.databases.split(",")),
        pg_url=ns.pg_url,
        landed_src=ns.landed_src,
        json=ns.json,
        out=ns.out,
    )


if __name__ == "__main__":
    main(parse())
