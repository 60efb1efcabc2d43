"""What the gymnasium problems share: the environment spec as data, seeds and sample counting.

A job names an environment by ``env_id``, which must be registered in gymnasium's registry
(checked before anything is built), and passes ``env_kwargs``, a JSON object of plain values
(strings, numbers, booleans, null, and lists of those: FrozenLake's ``desc`` is a list of
strings). Nothing in them is imported or evaluated beyond what gymnasium's own registry entry
does, and nothing is downloaded: environments whose packages are missing are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import warnings
from typing import Any, Literal

from pydantic import Field, field_validator

from ridgerider.problems.base import ParamsModel

__all__ = [
    "GymParams",
    "SampleCounter",
    "make_env",
    "rollout_seed",
]

Plain = str | int | float | bool | None
MAX_SAMPLES = 1_000_000
MAX_HORIZON = 10_000
FORBIDDEN_KWARGS = ("render_mode",)


class GymParams(ParamsModel):
    """Parameters every gymnasium problem takes."""

    env_id: str = Field(
        "FrozenLake-v1", min_length=1, max_length=200, description="gymnasium environment id"
    )
    env_kwargs: dict[str, Plain | list[Plain]] = Field(
        default_factory=dict, description="keyword arguments of gymnasium.make (plain values)"
    )
    gamma: float = Field(0.99, gt=0, lt=1, description="discount factor")
    horizon: int | None = Field(
        None,
        ge=1,
        le=MAX_HORIZON,
        description="steps per sampled episode (default: the first H with gamma**H <= 1e-8)",
    )
    curvature: Literal["exact", "dice"] = Field(
        "exact", description="exact derivatives, or DiCE estimates from sampled episodes"
    )
    samples: int = Field(
        1000,
        ge=2,
        le=MAX_SAMPLES,
        description="dice: episodes sampled per point (gradient, Hessian and HVPs share them)",
    )

    sample_seed: int = Field(
        0, ge=0, le=2**31 - 1, description="dice: seed of the sampled episodes (with node keys)"
    )

    @field_validator("env_id")
    @classmethod
    def _registered(cls, value: str) -> str:
        import gymnasium

        if value not in gymnasium.registry:
            raise ValueError(f"unknown environment {value!r}: not in gymnasium's registry")
        return value

    @field_validator("env_kwargs", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        """Accept a JSON object as text (``--set 'env_kwargs={"map_name": "8x8"}'``)."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object: {exc}") from None
        return value

    @field_validator("env_kwargs")
    @classmethod
    def _plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in FORBIDDEN_KWARGS:
                raise ValueError(f"{key!r} cannot be set")
        return value

    def episode_steps(self) -> int:
        """The sampled episodes' length cap: ``horizon``, or where ``γ^H`` drops below 1e-8."""
        if self.horizon is not None:
            return self.horizon
        return min(MAX_HORIZON, math.ceil(math.log(1e-8) / math.log(self.gamma)))


def make_env(problem: str, params: GymParams, **extra: Any) -> Any:
    """``gymnasium.make(env_id, **env_kwargs)``; a failure is a :class:`ParamError`."""
    import gymnasium

    from ridgerider.problems.base import ParamError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gymnasium.make(params.env_id, **params.env_kwargs, **extra)
    except gymnasium.error.DependencyNotInstalled as exc:
        raise ParamError(problem, "env_id", f"{params.env_id!r} needs {exc}") from None
    except Exception as exc:  # whatever the constructor raises, the job's data is at fault
        raise ParamError(problem, "env_kwargs", f"{params.env_id!r} refused them: {exc}") from None


def rollout_seed(seed: int, node: str) -> int:
    """A 63-bit seed for the episodes of one node (a pure function of its arguments)."""
    digest = hashlib.sha256(f"{seed}:{node}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class SampleCounter:
    """Episodes sampled so far, shared by a problem and its per-branch copies (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.episodes = 0

    def add(self, n: int) -> None:
        """Count ``n`` more sampled episodes."""
        with self._lock:
            self.episodes += n
