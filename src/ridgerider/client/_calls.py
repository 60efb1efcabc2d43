"""Every API call as a :class:`Call`, shared by :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ridgerider import schemas
from ridgerider.client._base import Call

__all__ = ["Calls"]


class Calls:
    """Builders of the API's calls (no I/O)."""

    @staticmethod
    def submit(
        problem: str,
        params: dict[str, Any] | None,
        seed: int,
        wall_time_s: float | None,
        settings: dict[str, Any] | None,
        named: dict[str, Any],
        idempotency_key: str | None,
        accelerator: str = "cpu",
        name: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Call:
        """``POST /jobs`` (a fresh idempotency key makes retries safe)."""
        given = {k: v for k, v in named.items() if v is not None}
        body: dict[str, Any] = {
            "problem": problem,
            "params": params or {},
            "seed": seed,
            "settings": {**(settings or {}), **given},
        }
        if wall_time_s is not None:
            body["wall_time_s"] = wall_time_s
        if accelerator != "cpu":
            body["accelerator"] = accelerator
        if name is not None:
            body["name"] = name
        if tags:
            body["tags"] = list(tags)
        key = {"Idempotency-Key": idempotency_key or f"sdk-{uuid.uuid4().hex}"}
        return Call("POST", "/jobs", schemas.JobPublic, json=body, headers=key, retry=True)

    @staticmethod
    def get(job_id: int) -> Call:
        """``GET /jobs/{id}``."""
        return Call("GET", f"/jobs/{job_id}", schemas.JobPublic, retry=True)

    @staticmethod
    def list(
        status: str | None, limit: int, after: int | None, filters: dict[str, str | None]
    ) -> Call:
        """``GET /jobs`` (``filters``: ``name``, ``tag``, ``problem``)."""
        query = {"status": status, "limit": limit, "after": after, **filters}
        return Call("GET", "/jobs", schemas.JobsPublic, params=query, retry=True)

    @staticmethod
    def delete(job_id: int) -> Call:
        """``DELETE /jobs/{id}``."""
        return Call("DELETE", f"/jobs/{job_id}")

    @staticmethod
    def nodes_csv(job_id: int) -> Call:
        """``GET /jobs/{id}/nodes.csv``."""
        return Call("GET", f"/jobs/{job_id}/nodes.csv", retry=True)

    @staticmethod
    def cancel(job_id: int) -> Call:
        """``POST /jobs/{id}/cancel``."""
        return Call("POST", f"/jobs/{job_id}/cancel", schemas.JobPublic)

    @staticmethod
    def extend(job_id: int, budgets: dict[str, Any]) -> Call:
        """``POST /jobs/{id}/extend``."""
        body = {k: v for k, v in budgets.items() if v is not None}
        return Call("POST", f"/jobs/{job_id}/extend", schemas.JobPublic, json=body)

    @staticmethod
    def tree(job_id: int, pending: bool) -> Call:
        """``GET /jobs/{id}/tree``."""
        return Call(
            "GET", f"/jobs/{job_id}/tree", schemas.TreePublic, {"pending": pending}, retry=True
        )

    @staticmethod
    def nodes(job_id: int, after: int | None, limit: int) -> Call:
        """``GET /jobs/{id}/nodes``: one page."""
        query = {"after": after, "limit": limit}
        return Call("GET", f"/jobs/{job_id}/nodes", schemas.NodesPublic, params=query, retry=True)

    @staticmethod
    def node(job_id: int, node_id: int) -> Call:
        """``GET /jobs/{id}/nodes/{node}``."""
        return Call("GET", f"/jobs/{job_id}/nodes/{node_id}", schemas.NodePublic, retry=True)

    @staticmethod
    def solutions(job_id: int) -> Call:
        """``GET /jobs/{id}/solutions``."""
        return Call("GET", f"/jobs/{job_id}/solutions", list[schemas.SolutionPublic], retry=True)

    @staticmethod
    def chosen(job_id: int) -> Call:
        """``GET /jobs/{id}/chosen``."""
        return Call("GET", f"/jobs/{job_id}/chosen", schemas.ChosenPublic, retry=True)

    @staticmethod
    def rides(job_id: int) -> Call:
        """``GET /jobs/{id}/rides``."""
        return Call("GET", f"/jobs/{job_id}/rides", list[schemas.RidePublic], retry=True)

    @staticmethod
    def params(job_id: int, node_id: int) -> Call:
        """``GET /jobs/{id}/nodes/{node}/params`` as ``.npy``."""
        path = f"/jobs/{job_id}/nodes/{node_id}/params"
        return Call("GET", path, None, params={"format": "npy"}, retry=True)

    @staticmethod
    def problems() -> Call:
        """``GET /problems``."""
        return Call("GET", "/problems", list[schemas.ProblemPublic], retry=True)
