"""What ``ridgerider run`` asks for, and the one check of it: the problem and its settings.

The command checks its request here before it stores a job; a warm pool's intake
(:mod:`ridgerider.cli.intake`) checks a request it was handed here too, so both refuse the same
input with the same message (exit 2 naming the option). A request is data: a problem name from
the registry of installed problems, and its parameters and settings as the command's text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, TypeAdapter

from ridgerider.cli.common import build_settings, coerce_settings, parse_pairs, usage_error

if TYPE_CHECKING:  # the engine loads inside the check, so a command handing it on stays light
    from ridgerider.core.settings import RRSettings
    from ridgerider.problems import RegisteredProblem
    from ridgerider.services.jobs import Submission

__all__ = ["RunRequest", "problem_and_settings"]


@dataclass(frozen=True)
class RunRequest:
    """``ridgerider run``'s options that say what to search (not where or how to show it).

    ``params`` and ``settings`` are the ``--set`` / ``--setting`` pairs as typed; ``shortcuts``
    the options that set one setting each (``--method``, ``--order``, ``--device``,
    ``--max-nodes``, ``--max-steps``; ``None``: not given). ``key``, a token the command
    draws, makes the job's idempotency key (:attr:`idempotency_key`): a request handed to a
    pool whose answer is lost is found by it, never stored twice.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    problem: str
    params: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    shortcuts: dict[str, str | int | None] = field(default_factory=dict)
    preset: str | None = None
    seed: int = 0
    wall_time: float | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()
    key: str | None = None
    cwd: str | None = None
    """The command's working directory: where its relative paths (``--set data_dir=...``) are."""

    @property
    def idempotency_key(self) -> str | None:
        """The stored job's idempotency key (its owner's, ``run:`` and :attr:`key`)."""
        return None if self.key is None else f"run:{self.key}"

    def to_json(self) -> dict[str, Any]:
        """The request as JSON data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> RunRequest:
        """The request in ``data`` (:meth:`to_json`'s); ``ValueError`` if it is not one."""
        return _REQUEST.validate_python(data)

    def relative_paths(self) -> list[str]:
        """The ``--set`` parameters that name local files by a relative path (engine loaded).

        They mean the command's working directory, so a process elsewhere must not read them.
        """
        from ridgerider.problems import UnknownProblemError, get

        try:
            names = get(self.problem).path_params
        except UnknownProblemError:
            return []
        pairs = (p.partition("=") for p in self.params)
        return [k.strip() for k, _, v in pairs if k.strip() in names and not Path(v).is_absolute()]

    def checked(self) -> tuple[RegisteredProblem, RRSettings]:
        """:func:`problem_and_settings` of this request."""
        return problem_and_settings(
            self.problem, self.params, self.settings, dict(self.shortcuts), self.preset
        )

    def submission(self, problem: RegisteredProblem, settings: RRSettings) -> Submission:
        """The job this request stores, for its checked problem and settings."""
        from ridgerider.services.jobs import Submission

        return Submission(
            problem,
            settings,
            seed=self.seed,
            wall_time_s=self.wall_time,
            name=self.name,
            tags=self.tags,
            idempotency_key=self.idempotency_key,
        )


_REQUEST: TypeAdapter[RunRequest] = TypeAdapter(RunRequest)


def problem_and_settings(
    name: str,
    params: tuple[str, ...],
    settings: tuple[str, ...],
    shortcuts: dict[str, Any],
    preset_name: str | None = None,
) -> tuple[RegisteredProblem, RRSettings]:
    """The problem and its settings from ``--preset``, ``--set``, ``--setting`` and shortcuts.

    Each later source overrides the earlier: the problem's defaults, the preset, ``--set`` /
    ``--setting``, the shortcut options. Exits with code 2 naming the field for bad input, and
    refuses the exact method on a problem too large for a dense Hessian before anything is
    stored.
    """
    from ridgerider.problems import ParamError, UnknownProblemError, create
    from ridgerider.problems.presets import UnknownPresetError, get_preset
    from ridgerider.services.submission import (
        FieldError,
        check_exact_size,
        check_problem_settings,
    )

    preset_params: dict[str, Any] = {}
    preset_settings: dict[str, Any] = {}
    if preset_name is not None:
        try:
            preset = get_preset(preset_name, name)
        except (UnknownPresetError, ValueError) as exc:
            usage_error(f"--preset: {exc}")
        preset_params, preset_settings = preset.params, preset.settings
    try:
        prob = create(name, {**preset_params, **parse_pairs(params, "--set")})
    except (UnknownProblemError, ParamError) as exc:
        usage_error(str(exc))
    overrides = {**preset_settings, **coerce_settings(parse_pairs(settings, "--setting"))}
    overrides |= {k: v for k, v in shortcuts.items() if v is not None}
    rr = build_settings(prob.default_settings(), overrides)
    try:
        check_exact_size(prob, rr)
    except FieldError as exc:
        usage_error(f"--method: {exc.message}")
    try:
        check_problem_settings(prob, rr)
    except FieldError as exc:
        field = exc.loc[-1]
        where = "--method" if field == "method" else f"setting {field}"
        usage_error(f"{where}: {exc.message}")
    return prob, rr
