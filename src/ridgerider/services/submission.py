"""Submitting a job from a request: validate everything first, then store once.

The API (and anything else that takes job specs from outside) calls :func:`submit_spec`. Every
check happens before anything is stored: the problem comes from the registry only, its
parameters are validated by the problem's model, the settings by :class:`RRSettings`, and the
problem's size against the service's limits. Errors are :class:`FieldError` naming the field.
A submission with an idempotency key that the owner already used returns the first job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ridgerider.core.errors import SettingsError
from ridgerider.core.minibatch import check_minibatch
from ridgerider.core.ood import check_ood_problem
from ridgerider.core.settings import RRSettings
from ridgerider.problems import ParamError, RegisteredProblem, UnknownProblemError, create, get
from ridgerider.services import jobs
from ridgerider.services.frontier.base import Frontier
from ridgerider.services.storage.base import Storage
from ridgerider.services.storage.records import DuplicateJobError, JobRecord

__all__ = [
    "MAX_PATH_CHARS",
    "FieldError",
    "IdempotencyConflictError",
    "Limits",
    "check_exact_size",
    "check_problem_settings",
    "submit_spec",
]


MAX_PATH_CHARS = 4096
"""The longest file parameter (``PATH_MAX`` on Linux): a longer one is refused unread."""


class FieldError(ValueError):
    """Invalid input; ``loc`` is the path of the offending field (e.g. ``("params", "depth")``)."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(loc)}: {message}")
        self.loc = loc
        self.message = message


class IdempotencyConflictError(ValueError):
    """The idempotency key was used before for a different submission."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"this Idempotency-Key was used for job {job_id} with another request")
        self.job_id = job_id


@dataclass(frozen=True)
class Limits:
    """Service limits on what one job may ask for."""

    max_params: int = 1_000_000
    """Largest problem (number of parameters θ)."""
    max_exact_params: int = 8192
    """Largest problem for ``method="exact"`` (a dense Hessian has n² entries)."""
    data_root: Path | None = None
    """The only folder whose files a job may read (problem parameters listed in a problem's
    ``path_params``, e.g. ``mnist-mlp``'s ``data_dir``); ``None``: no local files at all, so
    a request can never make the server read an arbitrary path."""


def _check_paths(
    problem: str, params: dict[str, Any] | None, root: Path | None
) -> dict[str, Any] | None:
    """Refuse file parameters outside the data root, before the problem reads anything.

    Returns the parameters with each file parameter resolved to an absolute path inside the
    root (relative paths are relative to the root), which is what the job stores.
    """
    try:
        names = get(problem).path_params
    except UnknownProblemError as exc:
        raise FieldError(("problem",), str(exc)) from None
    for name in names:
        value = (params or {}).get(name)
        if value is None:
            continue  # the problem's own validation reports a missing required path
        if root is None:
            raise FieldError(
                ("params", name),
                "this service reads no local files (its operator can set a data root, "
                "RIDGERIDER_DATA_ROOT)",
            )
        params = {**(params or {}), name: str(_inside(("params", name), value, root))}
    return params


def _inside(loc: tuple[str, ...], value: object, root: Path) -> Path:
    """``value`` resolved against ``root``, if it names something that exists inside it.

    Anything else is a :class:`FieldError` on ``loc``: a value that is not a string, one the
    operating system cannot take as a path (a NUL character, an unencodable character, a name
    too long), one that leaves the root or names nothing.
    """
    if not isinstance(value, str):
        raise FieldError(loc, f"must be a path (a string), got {type(value).__name__}")
    if "\x00" in value:
        raise FieldError(loc, "must not contain a NUL character")
    if len(value) > MAX_PATH_CHARS:
        raise FieldError(loc, f"must be at most {MAX_PATH_CHARS} characters")
    base = root.resolve()
    try:
        target = (base / value).resolve()
        inside = target.is_relative_to(base)
        found = inside and target.exists()
    except (OSError, ValueError) as exc:  # ENAMETOOLONG, a lone surrogate, ...
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise FieldError(loc, f"is not a usable path ({why})") from None
    if not inside:
        raise FieldError(loc, f"must be a path inside the data root {base}")
    if not found:
        raise FieldError(loc, f"{value!r} does not exist in the data root")
    return target


def _settings(problem_defaults: dict[str, Any], overrides: dict[str, Any]) -> RRSettings:
    try:
        return RRSettings(**{**problem_defaults, **overrides})
    except SettingsError as exc:
        raise FieldError(("settings", exc.field), exc.message) from None


def check_exact_size(
    problem: RegisteredProblem, settings: RRSettings, max_params: int = Limits.max_exact_params
) -> None:
    """Refuse ``method="exact"`` on a problem whose dense Hessian is too large, before any work.

    Raises :class:`FieldError` on ``settings.method`` naming the Hessian's memory.
    """
    n = problem.n_params
    if settings.method == "exact" and n > max_params:
        gib = n * n * 8 / 2**30
        raise FieldError(
            ("settings", "method"),
            f"exact needs a dense Hessian of {n} x {n} float64 ({gib:.3g} GiB, more while it is "
            f"built): {n} parameters exceed {max_params}; use method 'approx'",
        )


def check_problem_settings(problem: RegisteredProblem, settings: RRSettings) -> None:
    """Refuse settings the problem cannot honour, before any work.

    ``method="ood"`` needs a problem with training environments, ``hvp_batch`` one with training
    examples. Raises :class:`FieldError` on the setting (``settings.method``,
    ``settings.hvp_batch``).
    """
    try:
        check_ood_problem(problem, settings)
        check_minibatch(problem, settings)
    except SettingsError as exc:
        raise FieldError(("settings", exc.field), exc.message) from None


def submit_spec(
    storage: Storage,
    frontier: Frontier,
    problem: str,
    params: dict[str, Any] | None,
    overrides: dict[str, Any],
    *,
    seed: int = 0,
    wall_time_s: float | None = None,
    accelerator: str = "cpu",
    owner_id: int | None = None,
    idempotency_key: str | None = None,
    limits: Limits = Limits(),
    name: str | None = None,
    tags: tuple[str, ...] = (),
) -> tuple[JobRecord, bool]:
    """Validate and submit a job; returns it and whether it is new (``False``: a retry).

    The job is stored at once; its MIS is found by the worker that claims its root (see
    :func:`jobs.submit_job` with ``defer_mis``), so a submission never waits for it.

    Raises :class:`FieldError` for invalid input and :class:`IdempotencyConflictError` when the
    key was used for a different request; nothing is stored in either case.
    """
    params = _check_paths(problem, params, limits.data_root)
    try:
        built = create(problem, params)
    except UnknownProblemError as exc:
        raise FieldError(("problem",), str(exc)) from None
    except ParamError as exc:
        raise FieldError(("params", *exc.field.split(".")), exc.message) from None
    except (OSError, ValueError) as exc:  # e.g. a file parameter naming unreadable data
        raise FieldError(("params",), f"{type(exc).__name__}: {exc}") from None
    settings = _settings(built.default_settings(), overrides)
    if built.n_params > limits.max_params:
        raise FieldError(
            ("params",), f"{built.n_params} parameters exceed the limit {limits.max_params}"
        )
    check_exact_size(built, settings, limits.max_exact_params)
    check_problem_settings(built, settings)
    submission = jobs.Submission(
        built,
        settings,
        seed=seed,
        wall_time_s=wall_time_s,
        accelerator=accelerator,
        owner_id=owner_id,
        idempotency_key=idempotency_key,
        name=name,
        tags=tuple(tags),
    )
    if idempotency_key is not None:
        first = storage.find_job(owner_id, idempotency_key)
        if first is not None:
            return _replay(first, submission), False
    try:
        job = jobs.submit_job(storage, frontier, submission, defer_mis=True)
    except DuplicateJobError:  # a concurrent retry stored it first
        assert idempotency_key is not None
        first = storage.find_job(owner_id, idempotency_key)
        assert first is not None
        return _replay(first, submission), False
    return job, True


def _replay(first: JobRecord, submission: jobs.Submission) -> JobRecord:
    """The first job of a retried submission, if the retry asks for the same search."""
    same = first.params == submission.problem.params_dict() and first.seed == submission.seed
    budgets = ("max_nodes", "max_steps")  # an extension may have raised these since
    stored = {k: v for k, v in first.settings.items() if k not in budgets}
    wanted = {k: v for k, v in submission.settings.to_dict().items() if k not in budgets}
    if not (same and stored == wanted):
        raise IdempotencyConflictError(first.id)
    return first
