"""Zero-shot coordination: run RR replicates of a two-player game and score fingerprints.

:func:`run_crossplay` is what the ``crossplay`` command (and an API route) calls: it validates
its input (raising :class:`CrossplayInputError` naming the field before any work), runs ``R``
independent replicates (in this process, or in ``workers`` local processes), scores every
fingerprint by cross-play, chooses the one with the highest score and adds the baselines.
It returns a :class:`CrossplayReport`, whose :meth:`~CrossplayReport.to_dict` is the JSON of
``ridgerider crossplay --json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Any

import torch

from ridgerider.core.crossplay import (
    FingerprintScore,
    Replicate,
    ReplicateSettings,
    choose,
    common_choices,
    finish_replicates,
    replicate_seed,
    run_replicate,
    score_fingerprints,
    self_play_population,
)
from ridgerider.core.games import (
    TwoPlayerGame,
    cross_play_matrix,
    pair_stats,
    symmetric_cross_play,
)
from ridgerider.core.mis import MISResult, find_mis
from ridgerider.core.settings import MISSettings, RRSettings
from ridgerider.core.threads import use_compute_threads
from ridgerider.problems import ParamError, RegisteredProblem, UnknownProblemError, create

__all__ = [
    "MAX_FINGERPRINTS",
    "MAX_REPLICATES",
    "RIDE_DEFAULTS",
    "CrossplayInputError",
    "CrossplayReport",
    "check_request",
    "crossplay_settings",
    "run_crossplay",
]

MAX_REPLICATES = 256
MAX_WORKERS = 64
MAX_FINGERPRINTS = 4096
RIDE_DEFAULTS: dict[str, Any] = {"end_on_convex": False, "cluster_tol": 0.1}
"""Ride overrides for cross-play (ours). Rides run until the ridge is lost or stops descending,
not until the followed eigenvalue turns positive, since a leaf is finished by gradient descent
rather than branched again. A wide eigenvalue cluster (10 % of the spectral radius) lets a ride
that starts inside a repeated eigenvalue follow it after the perturbation splits it: with the
engine's 1 % the lever game's 1.0-lever ridges lose their ridge within a few steps, and their
leaves fall back to the 0.6 lever in about a fifth of the runs."""
OnReplicate = Callable[[int, int], None]
"""Called as ``on_replicate(done, total)`` after each finished replicate."""


class CrossplayInputError(ValueError):
    """Invalid cross-play request; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class CrossplayReport:
    """Everything ``ridgerider crossplay --json`` writes (see :meth:`to_dict`)."""

    problem: str
    params: dict[str, Any]
    replicates: int
    seed: int
    fingerprints: list[dict[str, Any]]
    """Per fingerprint: ``fingerprint``, ``choice``, ``eigenvalue``, ``xp``, ``xp_std``, ``sp``,
    ``sp_std``, ``xp_sym`` (games with declared symmetries), ``metrics`` (replicate 0's leaf),
    ``solution_keys`` (one per replicate)."""
    chosen: dict[str, Any]
    baselines: dict[str, Any]
    matrix: dict[str, Any]
    """``labels`` and ``values``: mean cross-play of fingerprint ``a`` (player 1) with ``b``
    (player 2) over replicate pairs ``i ≠ j``; its diagonal is the ``xp`` column."""
    settings: dict[str, Any]
    workers: int
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


def _problem(name: str, params: dict[str, Any] | None) -> RegisteredProblem:
    try:
        problem = create(name, params)
    except UnknownProblemError as exc:
        raise CrossplayInputError("problem", str(exc)) from None
    except ParamError as exc:
        raise CrossplayInputError(f"params.{exc.field}", exc.message) from None
    if not isinstance(problem, TwoPlayerGame):
        raise CrossplayInputError(
            "problem", f"{name!r} is not a two-player game (it declares no joint return)"
        )
    return problem


def crossplay_settings(
    problem: RegisteredProblem,
    settings: dict[str, Any] | None = None,
    replicate: dict[str, Any] | None = None,
) -> tuple[RRSettings, ReplicateSettings]:
    """Ride settings (the problem's defaults plus :data:`RIDE_DEFAULTS`) and replicate ones.

    Unknown or out-of-range keys raise :class:`CrossplayInputError`.
    """
    base = {**problem.default_settings(), **RIDE_DEFAULTS}
    try:
        rr = RRSettings.from_dict({**base, **(settings or {})})
    except (TypeError, ValueError) as exc:
        raise CrossplayInputError("settings", str(exc)) from None
    raw = dict(replicate or {})
    unknown = sorted(set(raw) - set(ReplicateSettings.field_names()))
    if unknown:
        known = ", ".join(ReplicateSettings.field_names())
        raise CrossplayInputError("replicate", f"unknown setting {unknown[0]!r} (known: {known})")
    try:
        rep = ReplicateSettings(**raw)
    except (TypeError, ValueError) as exc:
        raise CrossplayInputError("replicate", str(exc)) from None
    return rr, rep


def _check_int(field_name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CrossplayInputError(
            field_name, f"must be an integer in [{low}, {high}], got {value!r}"
        )
    return value


def check_request(
    problem_name: str,
    params: dict[str, Any] | None,
    replicates: int,
    fingerprints: int | None = None,
    seed: int = 0,
) -> RegisteredProblem:
    """Validate a cross-play request without running it; returns the problem.

    Raises :class:`CrossplayInputError` naming the first invalid field (what
    :func:`run_crossplay` checks before any work, so a service can refuse before storing).
    """
    problem = _problem(problem_name, params)
    _check_int("replicates", replicates, 2, MAX_REPLICATES)
    if fingerprints is not None:
        _check_int("fingerprints", fingerprints, 1, MAX_FINGERPRINTS)
    _check_int("seed", seed, 0, 2**63 - 1)
    return problem


def _replicate_task(
    problem_name: str,
    params: dict[str, Any],
    settings: dict[str, Any],
    replicate: dict[str, Any],
    n_indices: int,
    seed: int,
    mis: MISResult,
) -> Replicate:
    """One replicate in a worker process (arguments are plain data and tensors)."""
    use_compute_threads()
    problem = create(problem_name, params)
    rr = RRSettings.from_dict(settings)
    return run_replicate(problem, rr, ReplicateSettings(**replicate), n_indices, seed, mis)


def _run_replicates(
    problem: RegisteredProblem,
    rr: RRSettings,
    rep: ReplicateSettings,
    n_indices: int,
    seeds: list[int],
    mis: MISResult,
    workers: int,
    on_replicate: OnReplicate | None,
) -> list[Replicate]:
    done: list[Replicate] = []
    if workers == 0:
        # Rides one replicate at a time, then every leaf finished in one batch (much cheaper
        # than a batch per replicate: a descent step costs about the same for 20 or 200 rows).
        for s in seeds:
            done.append(run_replicate(problem, rr, rep, n_indices, s, mis, finish_leaves=False))
            if on_replicate is not None:
                on_replicate(len(done), len(seeds))
        finish_replicates(problem, done, rep)
        return done
    args = (problem.name, problem.params_dict(), rr.to_dict(), asdict(rep), n_indices)
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(seeds)), mp_context=ctx) as pool:
        futures = [pool.submit(_replicate_task, *args, s, mis) for s in seeds]
        for fut in futures:
            done.append(fut.result())
            if on_replicate is not None:
                on_replicate(len(done), len(seeds))
    return done


def run_crossplay(
    problem_name: str,
    params: dict[str, Any] | None,
    replicates: int,
    fingerprints: int | None = None,
    seed: int = 0,
    *,
    settings: dict[str, Any] | None = None,
    replicate: dict[str, Any] | None = None,
    workers: int = 0,
    on_replicate: OnReplicate | None = None,
) -> CrossplayReport:
    """Run the zero-shot coordination scheme on a two-player game and report it.

    Args:
        problem_name: a registered two-player problem (``lever-game``, ``coord-game``).
        params: its parameters (raw, validated here).
        replicates: ``R`` independent RR runs, 2 to :data:`MAX_REPLICATES`.
        fingerprints: ``F``: the top ``F`` eigen-indices at the MIS, each with both signs
            (default: the problem's ``n_ridges``); only indices negative in every replicate
            are scored.
        seed: master seed; replicate ``r`` uses :func:`replicate_seed` of it.
        settings: overrides of the ride settings (:class:`RRSettings` fields).
        replicate: overrides of :class:`ReplicateSettings`.
        workers: ``0`` runs replicates in this process, ``N > 0`` in ``N`` local processes
            (same result either way).
        on_replicate: progress callback.
    """
    start = time.perf_counter()
    problem = check_request(problem_name, params, replicates, fingerprints, seed)
    _check_int("workers", workers, 0, MAX_WORKERS)
    rr, rep = crossplay_settings(problem, settings, replicate)
    n_indices = rr.n_ridges if fingerprints is None else fingerprints
    game: TwoPlayerGame = problem  # type: ignore[assignment]

    mis = find_mis(problem, MISSettings(), torch.Generator().manual_seed(seed), rr.zero_tol)
    seeds = [replicate_seed(seed, r) for r in range(replicates)]
    runs = _run_replicates(problem, rr, rep, n_indices, seeds, mis, workers, on_replicate)
    scores = score_fingerprints(game, runs)
    if not scores:
        raise CrossplayInputError("problem", "the MIS has no negative curvature to branch on")
    rows = _fingerprint_rows(problem, scores, runs, replicate_seed(seed, -2))

    def pick(index: int) -> dict[str, Any]:
        r = rows[index]
        return {k: r[k] for k in ("fingerprint", "xp", "xp_std", "sp", "metrics")}

    agents = self_play_population(problem, replicates, replicate_seed(seed, -1), rep)
    sp_stats = pair_stats(cross_play_matrix(game, list(agents), list(agents)))
    return CrossplayReport(
        problem=problem.name,
        params=problem.params_dict(),
        replicates=replicates,
        seed=seed,
        fingerprints=rows,
        chosen=pick(choose(scores, "xp")),
        baselines={
            "self_play": {**asdict(sp_stats), "agents": replicates},
            "rr_self_play": pick(choose(scores, "sp")),
        },
        matrix=_fingerprint_matrix(game, runs, [r["fingerprint"] for r in rows]),
        settings={"ride": rr.to_dict(), "replicate": asdict(rep), "fingerprints": n_indices},
        workers=workers,
        elapsed_s=time.perf_counter() - start,
    )


def _fingerprint_rows(
    problem: RegisteredProblem,
    scores: Sequence[FingerprintScore],
    runs: Sequence[Replicate],
    sym_seed: int,
) -> list[dict[str, Any]]:
    """The report's row per scored fingerprint: its scores, leaves' keys and metrics."""
    game: TwoPlayerGame = problem  # type: ignore[assignment]
    sym_gen = torch.Generator().manual_seed(sym_seed)
    rows = []
    for s in scores:
        leaves = [r.by_choice()[s.choice] for r in runs]
        row: dict[str, Any] = {
            "fingerprint": s.key,
            "choice": list(s.choice),
            "eigenvalue": sum(leaf.eigenvalue for leaf in leaves) / len(leaves),
            **asdict(s.stats),
            "metrics": problem.metrics(leaves[0].theta),
            "solution_keys": [problem.solution_key(leaf.theta) for leaf in leaves],
        }
        xp_sym = symmetric_cross_play(game, [leaf.theta for leaf in leaves], sym_gen)
        if xp_sym is not None:
            row["xp_sym"] = xp_sym
        rows.append(row)
    return rows


def _fingerprint_matrix(
    game: TwoPlayerGame, runs: list[Replicate], labels: list[str]
) -> dict[str, Any]:
    """Mean cross-play between fingerprints over replicate pairs ``i ≠ j``."""
    choices = common_choices(runs)
    maps = [r.by_choice() for r in runs]
    thetas = [m[c].theta for m in maps for c in choices]  # replicate-major
    big = cross_play_matrix(game, thetas, thetas)
    r, k = len(runs), len(choices)
    blocks = big.reshape(r, k, r, k).permute(1, 3, 0, 2)  # [fp a, fp b, run i, run j]
    off = ~torch.eye(r, dtype=torch.bool)
    values = blocks[:, :, off].mean(-1)
    return {"labels": labels, "values": [[round(float(v), 6) for v in row] for row in values]}
