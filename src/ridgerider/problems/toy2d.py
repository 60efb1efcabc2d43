"""``toy2d``: a 2-D surface with the shape of the paper's Fig. 1.

    f(x, y) = −a·x² + p·x⁴ − b·y² + q·y⁴ + c·x²·y²

with defaults a = 2, p = 1, b = 0.5, q = 0.01, c = 2. The origin is a maximum with Hessian
diag(−2a, −2b): x is the high-curvature direction, y the low-curvature one. Along x lie two
local minima at (±√(a/2p), 0) with value −a²/4p (= −1); along y the two global minima at
(0, ±√(b/2q)) with value −b²/4q (= −6.25). The coupling c·x²·y² makes both pairs minima (not
saddles) and sends gradient descent started near the origin, where the x-gradient dominates,
into the local minima. With c > 3pb/a the y-curvature is already positive where the x-ridge
stops being a ridge (x² = a/6p), so each of the four ridges ends in the basin of one minimum.
Validation enforces that the parameters keep this shape.
"""

from __future__ import annotations

import math
from typing import Any, Self

import torch
from pydantic import Field, model_validator
from torch import Tensor

from ridgerider.problems.base import ParamsModel, RegisteredProblem

__all__ = ["Toy2D", "Toy2DParams"]


class Toy2DParams(ParamsModel):
    """Coefficients of the surface (see the module docstring)."""

    a: float = Field(2.0, gt=0, le=1e3, description="x² coefficient (−a): high curvature")
    p: float = Field(1.0, gt=0, le=1e3, description="x⁴ coefficient")
    b: float = Field(0.5, gt=0, le=1e3, description="y² coefficient (−b): low curvature")
    q: float = Field(0.01, gt=0, le=1e3, description="y⁴ coefficient")
    c: float = Field(2.0, gt=0, le=1e3, description="x²y² coupling")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if not self.a > self.b:
            raise ValueError("a must exceed b (x must be the high-curvature direction)")
        if not self.b**2 / self.q > self.a**2 / self.p:
            raise ValueError("b²/q must exceed a²/p (the y minima must be the global ones)")
        if not self.c * self.a / (2 * self.p) > self.b:
            raise ValueError("c·a/(2p) must exceed b (the x minima must be minima)")
        if not self.c * self.b / (2 * self.q) > self.a:
            raise ValueError("c·b/(2q) must exceed a (the y minima must be minima)")
        return self


class Toy2D(RegisteredProblem):
    """Two local and two global minima around a maximum (paper Fig. 1)."""

    name = "toy2d"
    summary = "2-D surface of the paper's Fig. 1: a maximum, two local and two global minima"
    Params = Toy2DParams
    params: Toy2DParams

    @property
    def n_params(self) -> int:
        """Two coordinates."""
        return 2

    def loss(self, theta: Tensor) -> Tensor:
        """The surface value at ``θ = (x, y)``."""
        k = self.params
        x, y = theta[0], theta[1]
        return -k.a * x**2 + k.p * x**4 - k.b * y**2 + k.q * y**4 + k.c * x**2 * y**2

    def minima(self) -> dict[str, tuple[float, float]]:
        """The four minima by label: ``x+``, ``x-`` (local), ``y+``, ``y-`` (global)."""
        k = self.params
        xm, ym = math.sqrt(k.a / (2 * k.p)), math.sqrt(k.b / (2 * k.q))
        return {"x+": (xm, 0.0), "x-": (-xm, 0.0), "y+": (0.0, ym), "y-": (0.0, -ym)}

    def solution_key(self, theta: Tensor) -> str | None:
        """Label of the minimum within 5 % of its distance from the origin, else ``None``."""
        x, y = float(theta[0]), float(theta[1])
        for label, (mx, my) in self.minima().items():
            if math.hypot(x - mx, y - my) <= 0.05 * math.hypot(mx, my):
                return label
        return None

    def targets(self) -> list[str]:
        """All four minima."""
        return list(self.minima())

    def metrics(self, theta: Tensor) -> dict[str, Any]:
        """Coordinates, the minimum reached and whether it is a global one."""
        key = self.solution_key(theta)
        return {
            "x": float(theta[0]),
            "y": float(theta[1]),
            "minimum": key,
            "global": key in ("y+", "y-"),
        }

    def random_init(self, generator: torch.Generator) -> Tensor:
        """Uniform in the square [−3, 3]²."""
        return (torch.rand(2, generator=generator, dtype=self.dtype) * 2 - 1) * 3

    def default_settings(self) -> dict[str, Any]:
        """Both eigenvectors, small steps, gradient-descent polish at leaves (as in Fig. 1)."""
        return {
            "n_ridges": 2,
            "alpha": 0.1,
            "polish_steps": 1000,
            "polish_lr": 0.05,
            "zero_tol": 1e-8,
        }
