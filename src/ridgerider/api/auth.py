"""Bearer-token authentication and ownership: a user sees only their own jobs.

In development mode every request acts as the ``dev`` user and no token is needed; that user
and administrators see every job (the model is described in :mod:`ridgerider.services.accounts`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ridgerider.api.state import Service, get_service
from ridgerider.services import accounts
from ridgerider.services.storage.records import JobRecord, UserRecord

__all__ = ["CurrentUser", "ServiceDep", "current_user", "owned_job", "owner_filter", "visible"]

bearer = HTTPBearer(auto_error=False, description="an API token from `ridgerider token create`")
ServiceDep = Annotated[Service, Depends(get_service)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> UserRecord:
    """The user of the request's bearer token (401 without a live one).

    ``async``: development mode answers without leaving the event loop; a token is checked in
    one trip to the thread pool (a database read), not one per dependency.
    """
    if service.dev_user is not None:
        return service.dev_user
    if credentials is None:
        raise _unauthorized("missing bearer token")
    user = await run_in_threadpool(
        accounts.authenticate, service.archive.storage, credentials.credentials
    )
    if user is None:
        raise _unauthorized("invalid, expired or revoked token")
    return user


CurrentUser = Annotated[UserRecord, Depends(current_user)]


def owned_job(service: Service, user: UserRecord, job_id: int) -> JobRecord:
    """The job if ``user`` owns it; another user's job is a 404, exactly like a missing one."""
    return visible(user, job_id, service.archive.storage.get_job(job_id))


def visible(user: UserRecord, job_id: int, job: JobRecord | None) -> JobRecord:
    """``job`` if ``user`` may see it, else the 404 of a missing job (see :func:`owned_job`)."""
    if job is None or not accounts.may_see(user, job.owner_id):
        raise HTTPException(404, f"job {job_id} not found")
    return job


def owner_filter(user: UserRecord) -> int | None:
    """The owner a listing is restricted to: the user's own id, ``None`` (all) for admins."""
    return None if accounts.sees_all(user) else user.id
