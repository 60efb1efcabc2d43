"""A job's tree: node pages, the whole tree for drawing, solutions and parameter tensors."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response

from ridgerider.api.auth import CurrentUser, ServiceDep, owned_job
from ridgerider.api.convert import (
    finite,
    node_out,
    npy_bytes,
    ride_out,
    safetensors_bytes,
    solution_out,
)
from ridgerider.api.routes.jobs import ERRORS, JobId
from ridgerider.schemas import (
    ID_MAX,
    RANK_MAX,
    NodePublic,
    NodesPublic,
    NodeTracePublic,
    RidePublic,
    SolutionPublic,
    TreePublic,
)

__all__ = ["NPY", "SAFETENSORS", "router"]

router = APIRouter(tags=["tree"])
NodeId = Annotated[int, Path(ge=1, le=ID_MAX, description="node id")]
NPY = "application/x-npy"
SAFETENSORS = "application/vnd.safetensors"


@router.get(
    "/jobs/{job_id}/nodes",
    operation_id="list_nodes",
    response_model=NodesPublic,
    responses=ERRORS,
)
def list_nodes(
    job_id: JobId,
    service: ServiceDep,
    user: CurrentUser,
    after: Annotated[
        int | None, Query(ge=0, le=RANK_MAX, description="next_after of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> NodesPublic:
    """The finished tree in single-worker expansion order, a page at a time."""
    owned_job(service, user, job_id)
    page = service.archive.storage.list_nodes(job_id, cursor=after, limit=limit, tree=True)
    return NodesPublic(items=[node_out(n) for n in page.items], next_after=page.next_cursor)


@router.get(
    "/jobs/{job_id}/tree", operation_id="get_tree", response_model=TreePublic, responses=ERRORS
)
def get_tree(
    job_id: JobId,
    service: ServiceDep,
    user: CurrentUser,
    pending: Annotated[
        bool, Query(description="also branches not finished yet (waiting, leased, dead)")
    ] = False,
) -> TreePublic:
    """Every node with its parent, shaped for drawing.

    By default the finished tree (what ``ridgerider run`` returns, in expansion order); with
    ``pending=true`` also the branches in flight, by id.
    """
    job = owned_job(service, user, job_id)
    nodes = service.archive.storage.iter_nodes(job_id, tree=not pending)
    return TreePublic(
        job_id=job.id,
        status=job.status,  # type: ignore[arg-type]
        complete=job.finished,
        nodes=[node_out(n) for n in nodes],
    )


@router.get(
    "/jobs/{job_id}/solutions",
    operation_id="list_solutions",
    response_model=list[SolutionPublic],
    responses=ERRORS,
)
def list_solutions(job_id: JobId, service: ServiceDep, user: CurrentUser) -> list[SolutionPublic]:
    """The solutions found so far, in the order the single-worker search finds them."""
    owned_job(service, user, job_id)
    return [solution_out(s) for s in service.archive.storage.solutions(job_id)]


@router.get(
    "/jobs/{job_id}/rides",
    operation_id="list_rides",
    response_model=list[RidePublic],
    responses=ERRORS,
)
def list_rides(job_id: JobId, service: ServiceDep, user: CurrentUser) -> list[RidePublic]:
    """The branches being ridden right now and how far each got (live progress)."""
    owned_job(service, user, job_id)
    return [ride_out(r) for r in service.archive.storage.rides(job_id)]


@router.get(
    "/jobs/{job_id}/nodes/{node_id}",
    operation_id="get_node",
    response_model=NodePublic,
    responses=ERRORS,
)
def get_node(job_id: JobId, node_id: NodeId, service: ServiceDep, user: CurrentUser) -> NodePublic:
    """One node of the job (or a branch not ridden yet)."""
    owned_job(service, user, job_id)
    node = service.archive.storage.get_node(node_id)
    if node is None or node.job_id != job_id:
        raise HTTPException(404, f"job {job_id} has no node {node_id}")
    return node_out(node)


@router.get(
    "/jobs/{job_id}/nodes/{node_id}/params",
    operation_id="get_node_params",
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "description": "θ where the node's ride ended",
            "content": {NPY: {}, SAFETENSORS: {}},
        },
        404: {"description": "no such job or node, or the node is not done yet"},
    },
)
def get_node_params(
    job_id: JobId,
    node_id: NodeId,
    service: ServiceDep,
    user: CurrentUser,
    format: Annotated[
        Literal["npy", "safetensors"] | None,
        Query(description="default: from the Accept header, else npy"),
    ] = None,
    accept: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """The parameter vector θ where a done node's ride ended (``.npy`` or safetensors)."""
    owned_job(service, user, job_id)
    storage = service.archive.storage
    node = storage.get_node(node_id)
    theta = storage.node_theta(node_id) if node is not None and node.job_id == job_id else None
    if theta is None:
        raise HTTPException(404, f"job {job_id} has no done node {node_id}")
    if format is None:
        format = "safetensors" if accept and SAFETENSORS in accept else "npy"
    name = f"job{job_id}-node{node_id}"
    if format == "safetensors":
        meta = {"job_id": str(job_id), "node_id": str(node_id), "key": node.key if node else ""}
        body, media, ext = safetensors_bytes(theta, meta), SAFETENSORS, "safetensors"
    else:
        body, media, ext = npy_bytes(theta), NPY, "npy"
    disposition = f'attachment; filename="{name}.{ext}"'
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


@router.get(
    "/jobs/{job_id}/nodes/{node_id}/trace",
    operation_id="get_node_trace",
    response_model=NodeTracePublic,
    responses=ERRORS,
)
def get_node_trace(
    job_id: JobId, node_id: NodeId, service: ServiceDep, user: CurrentUser
) -> NodeTracePublic:
    """The loss at every step of a done node's ride and the spectrum where it ended."""
    owned_job(service, user, job_id)
    node = service.archive.storage.get_node(node_id)
    if node is None or node.job_id != job_id or node.trace is None:
        raise HTTPException(404, f"job {job_id} has no done node {node_id}")
    return NodeTracePublic(
        node_id=node.id,
        losses=finite(node.trace.get("losses", [])),
        spectrum=finite(node.trace.get("spectrum", [])),
    )
