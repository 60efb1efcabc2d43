"""A job's data as files: ``GET /jobs/{id}/nodes.csv`` (one row per node, streamed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ridgerider.api.auth import CurrentUser, ServiceDep, owned_job
from ridgerider.api.routes.jobs import ERRORS, JobId
from ridgerider.services.export import csv_lines, export_table

__all__ = ["CSV", "router"]

router = APIRouter(tags=["export"])
CSV = "text/csv; charset=utf-8"


@router.get(
    "/jobs/{job_id}/nodes.csv",
    operation_id="export_nodes_csv",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {CSV: {}}, "description": "one row per node"}},
)
def export_nodes_csv(job_id: JobId, service: ServiceDep, user: CurrentUser) -> StreamingResponse:
    """The finished tree as CSV, one row per node in expansion order.

    Columns: ``id``, ``parent_id``, ``key`` (the fingerprint), ``depth``, ``eigenvalue``,
    ``loss``, ``steps``, ``end_reason``, ``is_solution``, then one ``metric.<name>`` per metric.
    """
    owned_job(service, user, job_id)
    table = export_table(service.archive.storage, job_id, "nodes")
    filename = f"job-{job_id}-nodes.csv"
    return StreamingResponse(
        csv_lines(table),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
