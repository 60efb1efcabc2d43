"""The search settings a job may set (``JobCreate.settings``) and the budget limits.

Each field mirrors one of ``ridgerider.core.settings.RRSettings`` (a test checks names, allowed
values and bounds agree); ``device`` is the exception: where branches run is the worker's choice.

A field left out (or ``null``) takes the problem's default, so a core setting whose value may be
``None`` takes the word :data:`NO_LIMIT` on the wire instead: ``"max_depth": "none"`` is "no depth
limit" (``RRSettings(max_depth=None)``), ``"max_depth": null`` the problem's default depth.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, field_validator

from ridgerider.schemas.common import RequestModel

__all__ = ["MAX_NODES", "MAX_STEPS", "NO_LIMIT", "NULLABLE", "SearchSettings"]

MAX_NODES = 1_000_000
"""The largest node budget a job may ask for."""
MAX_STEPS = 1_000_000_000
"""The largest ride-step budget a job may ask for."""
NO_LIMIT = "none"
"""The wire's word for a core setting's ``None`` ("no limit"); ``null`` means "the default"."""
NULLABLE = ("max_depth",)
"""The settings that take :data:`NO_LIMIT`."""


class SearchSettings(RequestModel):
    """Search settings of a job; a field left out takes the problem's default.

    See ``ridgerider.core.settings.RRSettings`` for what each one does.
    """

    method: Literal["exact", "approx", "ood"] | None = None
    order: Literal["bfs", "dfs", "priority", "random"] | None = None
    approx_update: Literal["rayleigh_ritz", "paper"] | None = None
    approx_tol: float | None = Field(None, gt=0, lt=1)
    approx_steps: int | None = Field(None, ge=0, le=10_000, description="paper update steps")
    approx_lr_e: float | None = Field(None, ge=0, le=1e6)
    approx_lr_lambda: float | None = Field(None, ge=0, le=1e6)
    step_rule: Literal["backtrack", "fixed"] | None = None
    n_ridges: int | None = Field(None, ge=1, le=4096, description="ridges per branch")
    one_per_group: bool | None = None
    repeat_tol: float | None = Field(None, ge=0, le=1)
    zero_tol: float | None = Field(None, ge=0, le=1)
    alpha: float | None = Field(None, gt=0, le=1e6, description="largest step size")
    alpha_min: float | None = Field(None, gt=0, le=1e6)
    overlap_threshold: float | None = Field(None, gt=0, le=1, description="ride break threshold")
    end_on_convex: bool | None = None
    max_ride_steps: int | None = Field(None, ge=1, le=1_000_000)
    min_progress: float | None = Field(None, ge=0, le=1)
    signs: Literal["both", "descent"] | None = None
    grad_tol: float | None = Field(None, ge=0, le=1e6)
    cluster_tol: float | None = Field(None, ge=0, lt=1)
    update: Literal["exact", "fixed"] | None = None
    ridge_rule: Literal["eigen", "random_ascent"] | None = None
    hvp_batch: int | None = Field(
        None, ge=0, le=10_000_000, description="curvature minibatch size (0: full batch)"
    )
    polish_steps: int | None = Field(None, ge=0, le=1_000_000)
    polish_lr: float | None = Field(None, gt=0, le=1e6)
    max_depth: Annotated[int, Field(ge=0, le=1024)] | Literal["none"] | None = Field(
        None, description='depth of the deepest nodes; "none": no depth limit (null: default)'
    )
    ood_ridges: int | None = Field(None, ge=1, le=4096, description="ood: ridges per branch")
    ood_depth: int | None = Field(None, ge=0, le=1024, description="ood: depth of the leaves")
    ood_ride_steps: int | None = Field(None, ge=1, le=100_000, description="ood: RR steps")
    ood_inner_steps: int | None = Field(None, ge=0, le=100_000, description="ood: n per RR step")
    ood_alpha: float | None = Field(None, gt=0, le=1e6, description="ood: RR step size")
    ood_lr: float | None = Field(None, gt=0, le=1e3, description="ood: feature step size")
    ood_lr_e: float | None = Field(None, gt=0, le=1e3, description="ood: e_r step size")
    ood_probes: int | None = Field(None, ge=0, le=4096, description="ood: L2 probes")
    ood_refine_steps: int | None = Field(None, ge=0, le=100_000)
    ood_beta1: float | None = Field(None, ge=0, le=1e6)
    ood_beta2: float | None = Field(None, ge=0, le=1e6)
    ood_beta3: float | None = Field(None, ge=0, le=1e6)
    ood_beta4: float | None = Field(None, ge=0, le=1e6)
    ood_beta5: float | None = Field(None, ge=0, le=1e6)
    ood_mis_steps: int | None = Field(None, ge=0, le=100_000)
    ood_mis_loss: float | None = Field(None, gt=0, le=1e6)
    ood_mis_tries: int | None = Field(None, ge=1, le=100)
    max_nodes: int | None = Field(None, ge=1, le=MAX_NODES, description="budget: nodes")
    max_steps: int | None = Field(None, ge=0, le=MAX_STEPS, description="budget: ride steps")

    @field_validator("max_depth", mode="wrap")
    @classmethod
    def _one_error(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One error naming the field, not one per member of the union."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"must be an integer in [0, 1024], {NO_LIMIT!r} or null") from None

    def given(self) -> dict[str, Any]:
        """The settings the request sets (the rest take the problem's defaults).

        :data:`NO_LIMIT` becomes ``None``, the core's "no limit".
        """
        given = self.model_dump(exclude_none=True)
        return {k: None if k in NULLABLE and v == NO_LIMIT else v for k, v in given.items()}
