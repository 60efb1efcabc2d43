"""The cross-play calls as :class:`Call` objects, shared by ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import uuid
from typing import Any

from ridgerider import schemas
from ridgerider.client._base import Call

__all__ = ["XpCalls"]


class XpCalls:
    """Builders of the ``/crossplay`` calls (no I/O)."""

    @staticmethod
    def submit(
        problem: str,
        params: dict[str, Any] | None,
        replicates: int,
        fingerprints: int | None,
        seed: int,
        idempotency_key: str | None,
    ) -> Call:
        """``POST /crossplay`` (a fresh idempotency key makes retries safe)."""
        body: dict[str, Any] = {
            "problem": problem,
            "params": params or {},
            "replicates": replicates,
            "seed": seed,
        }
        if fingerprints is not None:
            body["fingerprints"] = fingerprints
        key = {"Idempotency-Key": idempotency_key or f"sdk-{uuid.uuid4().hex}"}
        return Call(
            "POST", "/crossplay", schemas.CrossplayPublic, json=body, headers=key, retry=True
        )

    @staticmethod
    def get(run_id: int) -> Call:
        """``GET /crossplay/{id}``."""
        return Call("GET", f"/crossplay/{run_id}", schemas.CrossplayPublic, retry=True)

    @staticmethod
    def result(run_id: int) -> Call:
        """``GET /crossplay/{id}/result``."""
        return Call("GET", f"/crossplay/{run_id}/result", schemas.CrossplayReportPublic, retry=True)

    @staticmethod
    def list(limit: int, after: int | None) -> Call:
        """``GET /crossplay``."""
        query = {"limit": limit, "after": after}
        return Call("GET", "/crossplay", schemas.CrossplaysPublic, params=query, retry=True)
