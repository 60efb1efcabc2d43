"""The baseline of ``service_latency.py``: a minimal FastAPI + SQLAlchemy app on the same rows.

``GET /jobs/{id}`` selects the job's row and returns it as JSON; ``GET /jobs/{id}/tree`` selects
the columns of the job's finished nodes the dashboard draws and returns them as a JSON list.
No auth, no middleware, no validation models: what an endpoint reading the same data costs on
this stack, to compare ridgerider's routes with. The database is ``$MINIMAL_DATABASE_URL``.

    MINIMAL_DATABASE_URL=sqlite:///x.db uvicorn minimal_api:app --app-dir benchmarks
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy import MetaData, Table, create_engine, select

engine = create_engine(os.environ["MINIMAL_DATABASE_URL"], pool_size=8)
meta = MetaData()
JOBS = Table("jobs", meta, autoload_with=engine)
NODES = Table("nodes", meta, autoload_with=engine)
DRAWN = "id parent_id key depth loss eigenvalue steps end_reason is_solution metrics"
TREE_COLS = [NODES.c[name] for name in DRAWN.split()]
app = FastAPI()


@app.get("/jobs/{job_id}")
def get_job(job_id: int) -> dict[str, Any]:
    """The job's row."""
    with engine.connect() as conn:
        row = conn.execute(select(JOBS).where(JOBS.c.id == job_id)).mappings().one()
    return {k: v for k, v in row.items() if k != "rng_state"}


@app.get("/jobs/{job_id}/tree")
def get_tree(job_id: int) -> list[dict[str, Any]]:
    """The finished nodes' columns the dashboard draws."""
    stmt = select(*TREE_COLS).where(NODES.c.job_id == job_id, NODES.c.status == "done")
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt.order_by(NODES.c.rank)).mappings()]
