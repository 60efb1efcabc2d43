"""Error responses: every invalid field is named (422), bodies are size-limited (413).

All errors are JSON ``{"detail": ...}``: a list of ``{"loc", "msg", "type"}`` for invalid input
(FastAPI's shape, also used for checks the registry and the settings make), a string otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ridgerider.schemas import ErrorItem, ErrorPublic
from ridgerider.services.jobs import JobNotFoundError
from ridgerider.services.submission import FieldError, IdempotencyConflictError

__all__ = [
    "AllowHeaderMiddleware",
    "BodyLimitMiddleware",
    "field_error",
    "install_handlers",
    "invalid_body",
]


def invalid_body(items: list[ErrorItem]) -> dict[str, Any]:
    """The JSON of an invalid-input answer (:class:`~ridgerider.schemas.ErrorPublic`)."""
    return ErrorPublic(detail=items).model_dump(mode="json")


def field_error(loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> JSONResponse:
    """A 422 naming one field."""
    return JSONResponse(invalid_body([ErrorItem(loc=list(loc), msg=msg, type=kind)]), 422)


def install_handlers(app: FastAPI) -> None:
    """Map service exceptions to HTTP responses."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = [ErrorItem(loc=list(e["loc"]), msg=e["msg"], type=e["type"]) for e in exc.errors()]
        return JSONResponse(invalid_body(items), 422)

    @app.exception_handler(FieldError)
    async def bad_field(_: Request, exc: FieldError) -> JSONResponse:
        return field_error(("body", *exc.loc), exc.message)

    @app.exception_handler(IdempotencyConflictError)
    async def conflict(_: Request, exc: IdempotencyConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 409)

    @app.exception_handler(JobNotFoundError)
    async def missing(_: Request, exc: JobNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": f"job {exc.job_id} not found"}, 404)


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 before any route sees them.

    The body is read (up to the limit) and replayed, so a body without ``Content-Length``
    (chunked) is limited too.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send) -> None:
        msg = f"request body larger than {self.limit} bytes"
        item = ErrorItem(loc=["body"], msg=msg, type="too_large")
        body = json.dumps(invalid_body([item])).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared and the actual size of the body."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AllowHeaderMiddleware:
    """On 405, list in ``Allow`` every method of the path, not only the first route's.

    Starlette answers 405 from the first route whose path matches, so ``GET /jobs`` and
    ``POST /jobs`` (two routes) would advertise one method each. The methods come from the
    OpenAPI paths (``paths`` returns them); other paths keep Starlette's header.
    """

    def __init__(self, app: ASGIApp, paths: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.paths = paths
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def _allow(self, path: str) -> str | None:
        if self._table is None:
            self._table = [
                (compile_path(template)[0], ", ".join(sorted(m.upper() for m in ops)))
                for template, ops in self.paths().items()
            ]
        return next((allow for regex, allow in self._table if regex.match(path)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the ``Allow`` header of a 405 response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = self._allow(scope["path"])
                if allow is not None:
                    kept = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                    message = {**message, "headers": [*kept, (b"allow", allow.encode())]}
            await send(message)

        await self.app(scope, receive, sending)
