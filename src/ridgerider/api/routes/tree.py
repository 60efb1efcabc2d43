"""A job's tree: node pages, the whole tree for drawing, solutions and parameter tensors."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response

from ridgerider.api.auth import CurrentUser, ServiceDep, owned_job
from ridgerider.api.compact import compact_body
from ridgerider.api.convert import (
    finite,
    node_fields,
    node_out,
    npy_bytes,
    ride_out,
    safetensors_bytes,
    solution_out,
    wire_json,
)
from ridgerider.api.httpcache import cache_headers, etag, not_modified
from ridgerider.api.routes.jobs import ERRORS, JobId
from ridgerider.core.selection import SELECTION_METRIC, choose
from ridgerider.schemas import (
    ID_MAX,
    RANK_MAX,
    ChosenPublic,
    NodePublic,
    NodesPublic,
    NodeTracePublic,
    RidePublic,
    SolutionPublic,
    TreeCompactPublic,
    TreePublic,
)
from ridgerider.schemas.enums import NodeStatus
from ridgerider.services.storage.records import JobRecord, NodeRecord

__all__ = ["COMPACT_LIMIT", "NPY", "SAFETENSORS", "router"]

router = APIRouter(tags=["tree"])
NodeId = Annotated[int, Path(ge=1, le=ID_MAX, description="node id")]
NPY = "application/x-npy"
SAFETENSORS = "application/vnd.safetensors"


IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", max_length=1024, description="an ETag of an earlier answer"),
]
Cursor = Annotated[
    int | None, Query(ge=0, le=RANK_MAX, description="next_after of the previous page")
]
COMPACT_LIMIT = 10_000
"""The largest compact page: a server's memory per request stays bounded, whatever the job."""


def _tree_tag(job: JobRecord, *parts: object) -> str | None:
    """The ETag of an answer about a finished job's tree (``None`` while the tree grows)."""
    return etag("tree", job.id, job.status, job.nodes, *parts) if job.finished else None


def _json(body: bytes | str, tag: str | None) -> Response:
    headers = cache_headers(tag) if tag else None
    return Response(body, media_type="application/json", headers=headers)


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
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The finished tree in single-worker expansion order, a page at a time.

    A finished job's pages carry an ``ETag`` (``If-None-Match`` → 304).
    """
    job = owned_job(service, user, job_id)
    tag = _tree_tag(job, "nodes", after or 0, limit)
    if tag and (cached := not_modified(if_none_match, tag)):
        return cached
    storage = service.archive.storage
    page = storage.list_nodes(job_id, cursor=after, limit=limit, tree=True, trace=False)
    body = {"items": [node_fields(n) for n in page.items], "next_after": page.next_cursor}
    return _json(wire_json(body), tag)


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
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Every node with its parent, shaped for drawing.

    By default the finished tree (what ``ridgerider run`` returns, in expansion order); with
    ``pending=true`` also the branches in flight, by id. A finished job's tree carries an
    ``ETag``. For big trees, ``/tree/compact`` gives what drawing needs in pages, far smaller.
    """
    job = owned_job(service, user, job_id)
    tag = _tree_tag(job, "all", int(pending))
    if tag and (cached := not_modified(if_none_match, tag)):
        return cached
    nodes = service.archive.storage.iter_nodes(job_id, tree=not pending, trace=False)
    body = {
        "job_id": job.id,
        "status": job.status,
        "complete": job.finished,
        "nodes": [node_fields(n) for n in nodes],
    }
    return _json(wire_json(body), tag)


@router.get(
    "/jobs/{job_id}/tree/compact",
    operation_id="get_tree_compact",
    response_model=TreeCompactPublic,
    responses=ERRORS,
)
def get_tree_compact(
    job_id: JobId,
    service: ServiceDep,
    user: CurrentUser,
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=COMPACT_LIMIT)] = 5000,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """A page of the finished tree as parallel arrays, one per field drawing needs.

    ``id``, ``parent_id``, ``key``, ``depth``, ``rank``, ``status``, ``eigenvalue``, ``loss``,
    ``steps``, ``end_reason``, ``is_leaf``, ``is_solution`` and ``metrics``: element ``i`` of
    each is the page's ``i``-th node, in rank order (a node's parent comes before it). The
    values equal ``/tree``'s; a node's trace and parameters are behind its own routes. Pages
    of up to 10,000 nodes, by rank cursor (``after`` ← ``next_after``); a finished job's pages
    carry an ``ETag``. gzip when the request accepts it.
    """
    job = owned_job(service, user, job_id)
    tag = _tree_tag(job, "compact", after or 0, limit)
    if tag and (cached := not_modified(if_none_match, tag)):
        return cached
    page = service.archive.storage.tree_rows(job_id, cursor=after, limit=limit)
    return _json(compact_body(job, page.items, page.next_cursor), tag)


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
    "/jobs/{job_id}/chosen",
    operation_id="get_chosen",
    response_model=ChosenPublic,
    responses=ERRORS,
)
def get_chosen(job_id: JobId, service: ServiceDep, user: CurrentUser) -> ChosenPublic:
    """The solution chosen on held-out data: the highest ``validation_accuracy`` so far.

    Solutions are found on training data only; this picks one with the data the problem held
    out, never its test data (``core.selection``). ``chosen`` is null for problems that hold no
    data out and while no solution is found.
    """
    owned_job(service, user, job_id)
    best = choose(service.archive.storage.solutions(job_id))
    return ChosenPublic(
        by=SELECTION_METRIC, chosen=solution_out(best) if best is not None else None
    )


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
def get_node(
    job_id: JobId,
    node_id: NodeId,
    service: ServiceDep,
    user: CurrentUser,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One node of the job (or a branch not ridden yet); a done node's carries an ``ETag``."""
    owned_job(service, user, job_id)
    node = service.archive.storage.get_node(node_id)
    if node is None or node.job_id != job_id:
        raise HTTPException(404, f"job {job_id} has no node {node_id}")
    tag = _node_tag(node, "detail")
    if tag and (cached := not_modified(if_none_match, tag)):
        return cached
    return _json(node_out(node).model_dump_json(), tag)


def _node_tag(node: NodeRecord, *parts: object) -> str | None:
    """The ETag of an answer about a done node (it never changes); ``None`` before."""
    return etag("node", node.id, *parts) if node.status == NodeStatus.DONE else None


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
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The parameter vector θ where a done node's ride ended (``.npy`` or safetensors).

    It never changes: the answer carries an ``ETag`` (``If-None-Match`` → 304, θ not read).
    """
    owned_job(service, user, job_id)
    storage = service.archive.storage
    node = storage.get_node(node_id)
    if format is None:
        format = "safetensors" if accept and SAFETENSORS in accept else "npy"
    tag = _node_tag(node, "params", format) if node is not None and node.job_id == job_id else None
    if tag and (cached := not_modified(if_none_match, tag)):
        return cached
    theta = storage.node_theta(node_id) if node is not None and node.job_id == job_id else None
    if theta is None:
        raise HTTPException(404, f"job {job_id} has no done node {node_id}")
    name = f"job{job_id}-node{node_id}"
    if format == "safetensors":
        meta = {"job_id": str(job_id), "node_id": str(node_id), "key": node.key if node else ""}
        body, media, ext = safetensors_bytes(theta, meta), SAFETENSORS, "safetensors"
    else:
        body, media, ext = npy_bytes(theta), NPY, "npy"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{ext}"'}
    if tag:
        headers |= cache_headers(tag)
    return Response(body, media_type=media, headers=headers)


@router.get(
    "/jobs/{job_id}/nodes/{node_id}/trace",
    operation_id="get_node_trace",
    response_model=NodeTracePublic,
    responses=ERRORS,
)
def get_node_trace(
    job_id: JobId,
    node_id: NodeId,
    service: ServiceDep,
    user: CurrentUser,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The loss at every step of a done node's ride and the spectrum where it ended.

    It never changes: the answer carries an ``ETag`` (``If-None-Match`` → 304).
    """
    owned_job(service, user, job_id)
    node = service.archive.storage.get_node(node_id)
    if node is None or node.job_id != job_id or node.trace is None:
        raise HTTPException(404, f"job {job_id} has no done node {node_id}")
    tag = _node_tag(node, "trace")
    if tag and (cached := not_modified(if_none_match, tag)):
        return cached
    body = NodeTracePublic(
        node_id=node.id,
        losses=finite(node.trace.get("losses", [])),
        spectrum=finite(node.trace.get("spectrum", [])),
    )
    return _json(body.model_dump_json(), tag)
