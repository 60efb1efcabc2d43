"""Claim sizes from measured ride and queue times (``Worker(batch="auto")``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["AdaptiveBatch"]


@dataclass
class AdaptiveBatch:
    """Sizes claims so that the frontier's fixed cost per claim stays a small share of the time.

    A round of ``k`` branches spends ``o(k) = a + b·k`` on the queue: ``a`` per claim (a round
    trip, a commit: one turn of the archive's writer on SQLite) and ``b`` per branch (its rows).
    Only ``a`` shrinks per branch as ``k`` grows, so the next size is the smallest ``k`` with
    ``a / (k·t) ≤ overhead_share`` for branches of ``t`` seconds, capped by ``max_batch`` and by
    ``max_claim_s`` of riding per claim (the work lost if the worker dies, and the time its
    claimed branches wait). ``a`` and ``b`` are a least-squares fit of ``o`` against ``k`` over
    past rounds, ``t`` a running mean; both weight the newest round by ``smoothing``. (Sizing
    by the whole ``o`` would feed back: when ``b > overhead_share·t`` a larger claim costs more
    per round, which asks for a larger claim still.) The slope ``b`` is refitted while recent
    rounds differ in size and kept while they do not; before any fit it is 0, so ``a`` is the
    whole mean ``o``, which errs towards larger claims.

    Branches of seconds get ``k = 1``; ``tree-rl`` depth-10 branches (~25 ms at the top of the
    tree) on a SQLite archive mostly 4–9; branches that cost nothing (a queue benchmark)
    ``max_batch``. The first claim is 1.

    A round whose branches were ridden together (``together``: the worker's batched exact
    rides) breaks the model's premise: there each added branch costs less than the last, so
    the claim that costs least per branch is the largest one allowed, and the next size is the
    cap itself (measured on ``lever-game``: claims of ~30 ride the README's job in 3.8 s of
    riding where claims of 4–15 took 4.4–5.3 s). The worker says so only where nothing else
    claims the job (``Worker.alone``).
    """

    overhead_share: float = 0.05
    max_batch: int = 32
    max_claim_s: float = 0.5
    smoothing: float = 0.3
    size: int = 1
    _sums: list[float] = field(default_factory=lambda: [0.0] * 5)
    """Weighted Σ1, Σk, Σk², Σo, Σk·o over past rounds."""
    _slope: float = 0.0
    """The last per-branch cost ``b`` fitted while the recent rounds had different sizes."""
    _branch_s: float | None = None

    def fixed_cost(self) -> float:
        """The fitted queue cost per claim ``a`` (seconds; 0 before any round)."""
        w, sk, skk, so, sko = self._sums
        if w <= 0:
            return 0.0
        mk, mo = sk / w, so / w
        var = skk / w - mk * mk
        if var >= 0.05:  # sizes differ enough to fit a slope; else keep the last one
            self._slope = max(0.0, (sko / w - mk * mo) / var)
        return max(0.0, mo - self._slope * mk)

    def observe(
        self, overhead_s: float, ride_s: float, branches: int, *, together: bool = False
    ) -> int:
        """Record one round (queue time, ride time, branches ridden); the next claim's size.

        ``together``: the round's branches were ridden together (the size is then the cap).
        """
        if branches < 1:
            return self.size
        keep, k = 1.0 - self.smoothing, float(branches)
        for i, x in enumerate((1.0, k, k * k, overhead_s, k * overhead_s)):
            self._sums[i] = keep * self._sums[i] + x
        t = ride_s / branches
        a = self.smoothing
        self._branch_s = t if self._branch_s is None else a * t + (1 - a) * self._branch_s
        per = max(self._branch_s, 1e-6)
        wanted = math.ceil(self.fixed_cost() / (self.overhead_share * per) * (1 - 1e-9))
        cap = min(self.max_batch, max(1, int(self.max_claim_s / per)))
        self.size = cap if together else max(1, min(wanted, cap))
        return self.size
