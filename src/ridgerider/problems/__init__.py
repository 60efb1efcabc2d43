"""Built-in problems and the registry of installed ones (entry points ``ridgerider.problems``)."""

from ridgerider.problems.base import ParamError, ParamsModel, RegisteredProblem
from ridgerider.problems.registry import UnknownProblemError, available, create, get

__all__ = [
    "ParamError",
    "ParamsModel",
    "RegisteredProblem",
    "UnknownProblemError",
    "available",
    "create",
    "get",
]
