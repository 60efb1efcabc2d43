"""Python SDK of the ridgerider service: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

Install: the SDK ships in the base package (``pip install ridgerider``). It imports only
``httpx``, ``pydantic`` and :mod:`ridgerider.schemas` (plus ``rich``, if installed, for the bar of
``wait(progress=True)``, which prints plain lines without it, and ``numpy``/``torch`` only
inside ``params()``), so ``import ridgerider.client`` never loads
torch or the server's libraries. Where torch is not wanted at all::

    pip install --no-deps ridgerider && pip install httpx pydantic

(the test suite checks that the SDK works with torch, numpy and the server libraries made
unimportable).

Example::

    from ridgerider.client import Client

    with Client("http://127.0.0.1:8000", token="rr_...") as rr:  # or Client.from_env()
        job = rr.submit("tree-rl", {"depth": 6}, seed=1, order="dfs", max_nodes=200)
        job = rr.wait(job.id, progress=True)
        for sol in rr.solutions(job.id):
            print(sol.fingerprint, sol.loss)
        theta = rr.params(job.id, sol.node_id)  # a torch tensor

Answers are the wire models of :mod:`ridgerider.schemas`, the ones the server sends
(``JobPublic``, ``TreePublic``, ``NodePublic``, ``SolutionPublic``, ``CrossplayReportPublic``,
...). Errors raise :class:`AuthError` (401), :class:`NotFound` (404), :class:`ValidationError`
(422, with ``fields``: the server's message per field), :class:`ConflictError` (409) or
:class:`ServerError` (5xx); all are :class:`ApiError`.
"""

from ridgerider.client._retry import Backoff
from ridgerider.client.aio import AsyncClient
from ridgerider.client.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NotFound,
    ServerError,
    ValidationError,
)
from ridgerider.client.sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthError",
    "Backoff",
    "Client",
    "ConflictError",
    "NotFound",
    "ServerError",
    "ValidationError",
]
