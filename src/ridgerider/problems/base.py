"""Base class for registered problems: typed, validated parameters on top of the engine's ABC."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from ridgerider.core.problem import Problem

__all__ = ["ParamError", "ParamsModel", "RegisteredProblem"]


class ParamsModel(BaseModel):
    """Base for problem parameter models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamError(ValueError):
    """Invalid problem parameters; ``field`` names the offending parameter."""

    def __init__(self, problem: str, field: str, message: str) -> None:
        super().__init__(f"{problem}: parameter {field!r}: {message}")
        self.problem = problem
        self.field = field
        self.message = message


class RegisteredProblem(Problem):
    """A problem with a pydantic parameter model, constructible from plain data.

    Subclasses set ``name``, ``summary`` and ``Params`` and take the validated model in
    ``__init__``. Parameters are data only: nothing in them is ever imported or evaluated.
    """

    Params: ClassVar[type[ParamsModel]] = ParamsModel
    path_params: ClassVar[tuple[str, ...]] = ()
    """Parameters that name local files or folders the problem reads: a service accepts them
    only inside its configured data root (see ``services.submission.Limits.data_root``)."""

    def __init__(self, params: ParamsModel) -> None:
        self.params = params

    @classmethod
    def from_params(cls, raw: dict[str, Any] | None = None) -> Self:
        """Validate ``raw`` (strings are coerced, e.g. from ``--set depth=6``) and build."""
        try:
            params = cls.Params.model_validate(raw or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "params"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(cls.Params.model_fields)
                msg = f"unknown parameter (allowed: {allowed})"
            raise ParamError(cls.name, field, msg) from None
        return cls(params)

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        """JSON schema of the parameters (served by the API and ``ridgerider problems``)."""
        return cls.Params.model_json_schema()

    def params_dict(self) -> dict[str, Any]:
        """The validated parameters as JSON-ready data."""
        return self.params.model_dump(mode="json")
