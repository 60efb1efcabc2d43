"""HTTP for big answers: gzip on the tree routes, ETags and 304s on data that cannot change.

- :class:`TreeGZipMiddleware` compresses the answers of the routes that list a tree (``/tree``,
  ``/tree/compact``, ``/nodes``, ``/nodes.csv``) for a client whose ``Accept-Encoding`` names
  gzip, from :data:`GZIP_MIN_BYTES` up (Starlette's ``GZipMiddleware``, large bodies compressed
  off the event loop). Other routes, the event streams among them, pass through untouched.
- :func:`etag` / :func:`not_modified`: a done node (its detail, trace and parameters) never
  changes, nor does a finished job's tree while its status and node count stay the same (an
  extension that runs it again changes both). Those answers carry a weak ``ETag`` (weak: the
  same JSON may go out gzipped or not) and ``Cache-Control: private, no-cache`` (a browser keeps
  them and asks again with ``If-None-Match``); a match is a ``304`` with no body. Ownership is
  checked first: a 304 says nothing a 200 would not.
"""

from __future__ import annotations

import re

from fastapi import Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "CACHE_CONTROL",
    "GZIP_MIN_BYTES",
    "TreeGZipMiddleware",
    "cache_headers",
    "etag",
    "not_modified",
]

GZIP_MIN_BYTES = 1024
"""Answers shorter than this go out as they are (gzip would save next to nothing)."""
GZIP_LEVEL = 6
"""zlib's default trade: most of level 9's ratio on JSON at a fraction of its time."""
CACHE_CONTROL = "private, no-cache"
_TREE_PATHS = re.compile(r"/jobs/\d+/(tree|tree/compact|nodes|nodes\.csv)$")


class TreeGZipMiddleware:
    """gzip for the tree listings only (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compress when the path is a tree listing; otherwise pass the request on."""
        if scope["type"] == "http" and _TREE_PATHS.search(scope["path"]):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def etag(*parts: object) -> str:
    """A weak entity tag from the parts that identify an unchanging answer."""
    return 'W/"rr1-' + "-".join(str(p) for p in parts) + '"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def not_modified(if_none_match: str | None, tag: str) -> Response | None:
    """The 304 for a request whose ``If-None-Match`` lists ``tag`` (weak comparison), or None."""
    if not if_none_match:
        return None
    wanted = _opaque(tag)
    for candidate in if_none_match.split(","):
        c = candidate.strip()
        if c == "*" or _opaque(c) == wanted:
            return Response(status_code=304, headers=cache_headers(tag))
    return None


def cache_headers(tag: str) -> dict[str, str]:
    """The headers an unchanging answer carries."""
    return {"ETag": tag, "Cache-Control": CACHE_CONTROL}
