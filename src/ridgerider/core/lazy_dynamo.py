"""Keep ``torch.optim`` from importing ``torch._dynamo`` in processes that never compile.

``torch.optim`` wraps ``Optimizer.add_param_group``, ``zero_grad``, ``state_dict``,
``load_state_dict`` and every optimizer's functional step in ``torch._disable_dynamo``, which
imports ``torch._dynamo`` on the first call so that a ``torch.compile`` trace skips them. That
import takes 0.9 s of one core here (``python -X importtime``; torch itself takes 0.75 s): 35 %
of ``ridgerider run``'s fixed cost, paid again by every worker process, for a compiler that
ridgerider never runs (the MIS search's L-BFGS and the leaves' Adam polish are eager).

:func:`skip_dynamo_import` gives each wrapped function the cached "disabled" function torch
would build on that first call, the function itself: torch's wrapper looks for that cache
(``fn.__dynamo_disable``) before importing. Eager calls run the same function either way (no
bits change); it is done only while ``torch._dynamo`` is not loaded (a process that compiles
has it, and keeps torch's own behaviour), and it does nothing if torch's wrapper is not the
one described here.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

__all__ = ["skip_dynamo_import"]

_STEPS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax", "nadam", "radam", "asgd")


def _wrapper_code() -> Any:
    """The code object of ``torch._disable_dynamo``'s wrapper (``None`` if torch changed it)."""
    disable = getattr(getattr(torch, "_compile", None), "_disable_dynamo", None)
    if disable is None:
        return None
    return getattr(disable(lambda: None), "__code__", None)


def _raw(fn: Any, code: Any) -> Any:
    """The function a ``_disable_dynamo`` wrapper (or an optimizer's fallback) wraps."""
    if getattr(fn, "__code__", None) is code or (
        getattr(getattr(fn, "__code__", None), "co_name", "") == "maybe_fallback"
    ):
        return getattr(fn, "__wrapped__", None)
    return None


def skip_dynamo_import() -> int:
    """Let eager ``torch.optim`` calls skip importing ``torch._dynamo``; how many it covered."""
    if "torch._dynamo" in sys.modules:
        return 0
    code = _wrapper_code()
    if code is None:
        return 0
    import importlib

    owners: list[Any] = [torch.optim.Optimizer]
    for name in _STEPS:
        try:
            owners.append(importlib.import_module(f"torch.optim.{name}"))
        except ImportError:
            continue
    done = 0
    for owner in owners:
        for value in list(vars(owner).values()):
            raw = _raw(value, code)
            if raw is not None and getattr(raw, "__dynamo_disable", None) is None:
                raw.__dynamo_disable = raw
                done += 1
    return done
