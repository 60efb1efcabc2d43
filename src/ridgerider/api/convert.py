"""Stored records → wire models (non-finite floats become ``null``: JSON has no NaN)."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
from fastapi import Response
from pydantic import BaseModel
from pydantic_core import to_json
from torch import Tensor

from ridgerider.schemas import JobPublic, MisPublic, NodePublic, RidePublic, SolutionPublic
from ridgerider.services.storage.records import JobRecord, NodeRecord, RideRecord, SolutionRecord

__all__ = [
    "finite",
    "job_out",
    "model_response",
    "node_fields",
    "node_out",
    "npy_bytes",
    "ride_out",
    "safetensors_bytes",
    "solution_out",
    "wire_json",
]


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """``model`` as a JSON response, serialised once by pydantic's core.

    A route returning a model has FastAPI dump it, validate it again against the route's
    ``response_model`` and encode the result: three passes for a model built here from stored
    data and already valid. The route keeps its ``response_model`` for the OpenAPI document.
    """
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (also inside lists and dicts) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def job_out(job: JobRecord, solutions: int | None = None) -> JobPublic:
    """A job as the API shows it (with its count of solutions, when given)."""
    s = job.settings
    return JobPublic(
        id=job.id,
        problem=job.problem,
        params=finite(job.params),
        seed=job.seed,
        status=job.status,  # type: ignore[arg-type]
        stopped_by=job.stopped_by,
        error=job.error,
        method=s["method"],
        order=s["order"],
        accelerator=job.accelerator,  # type: ignore[arg-type]
        name=job.name,
        tags=list(job.tags),
        solutions=solutions,
        settings=finite(s),
        mis=MisPublic(
            loss=finite(job.mis.get("loss")),
            grad_norm=finite(job.mis.get("grad_norm")),
            negative_eigenvalues=job.mis.get("negative_eigenvalues", 0),
            spectrum=finite(job.mis.get("spectrum", [])),
        )
        if job.mis
        else None,  # a worker is finding it
        phase=None if job.finished else ("search" if job.mis else "mis"),
        nodes=job.nodes,
        steps=job.steps,
        max_nodes=s["max_nodes"],
        max_steps=s["max_steps"],
        wall_time_s=job.wall_time_s,
        elapsed_s=job.elapsed_s,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _fingerprint(key: str) -> list[list[int]]:
    """``"0+.3-"`` → ``[[0, 1], [3, -1]]``: the wire's fingerprint, in one pass over the key."""
    return [[int(p[:-1]), 1 if p[-1] == "+" else -1] for p in key.split(".")] if key else []


def _finite_float(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


_NODE_FIELDS = tuple(NodePublic.model_fields)
"""The wire fields of a node, in the model's order."""


def node_fields(node: NodeRecord) -> dict[str, Any]:
    """A node's wire fields as a plain dict: what :func:`node_out` holds, without a model.

    For listings of stored nodes that are only serialised (by :func:`wire_json`): a model per
    node, built and validated, was a third of ``/tree``'s time. Non-finite floats are left to
    the serialiser.
    """
    out = {name: getattr(node, name, None) for name in _NODE_FIELDS}
    out["fingerprint"] = _fingerprint(node.key)
    return out


def wire_json(value: Any) -> bytes:
    """``value`` as JSON, serialised like a pydantic model's fields, NaN and infinities null.

    Dicts, lists, scalars and datetimes (in the form the models give them), in one pass of
    pydantic's core.
    """
    return to_json(value, inf_nan_mode="null")


def node_out(node: NodeRecord) -> NodePublic:
    """A node (or a branch not ridden yet) as the API shows it."""
    return NodePublic(
        id=node.id,
        parent_id=node.parent_id,
        fingerprint=_fingerprint(node.key),
        key=node.key,
        depth=node.depth,
        rank=node.rank,
        status=node.status,  # type: ignore[arg-type]
        eigenvalue=_finite_float(node.eigenvalue),
        eigenvalue_end=_finite_float(node.eigenvalue_end),
        loss_start=_finite_float(node.loss_start),
        loss=_finite_float(node.loss),
        steps=node.steps,
        end_reason=node.end_reason,
        leaf_reason=node.leaf_reason,
        is_leaf=node.is_leaf,
        is_solution=node.is_solution,
        solution_key=node.solution_key,
        n_children=node.n_children,
        crossings=node.crossings,
        metrics=None if node.metrics is None else finite(node.metrics),
        finished_at=node.finished_at,
    )


def ride_out(ride: RideRecord) -> RidePublic:
    """A ride in flight as the API shows it."""
    return RidePublic(
        node_id=ride.node_id,
        fingerprint=[list(c) for c in ride.fingerprint],
        key=ride.key,
        depth=ride.depth,
        worker=ride.worker,
        attempts=ride.attempts,
        steps=ride.steps,
        loss=finite(ride.loss),
        loss_start=finite(ride.loss_start),
    )


def solution_out(sol: SolutionRecord) -> SolutionPublic:
    """A solution as the API shows it."""
    return SolutionPublic(
        node_id=sol.node_id,
        fingerprint=[list(c) for c in sol.fingerprint],
        key=sol.key,
        rank=sol.rank,
        solution_key=sol.solution_key,
        loss=finite(sol.loss),
        metrics=finite(sol.metrics),
    )


def npy_bytes(theta: Tensor) -> bytes:
    """A 1-D parameter tensor in NumPy's ``.npy`` format."""
    buf = io.BytesIO()
    np.save(buf, theta.detach().cpu().numpy(), allow_pickle=False)
    return buf.getvalue()


_ST_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16"}


def safetensors_bytes(theta: Tensor, metadata: dict[str, str]) -> bytes:
    """A parameter tensor in the safetensors format (tensor ``"theta"``), written directly.

    Layout: 8-byte little-endian header length, the JSON header (padded with spaces to a
    multiple of 8), then the tensor's little-endian bytes.
    """
    array = theta.detach().cpu().numpy()
    dtype = _ST_DTYPES[str(array.dtype)]
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    header: dict[str, Any] = {
        "__metadata__": metadata,
        "theta": {"dtype": dtype, "shape": list(array.shape), "data_offsets": [0, len(data)]},
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data
