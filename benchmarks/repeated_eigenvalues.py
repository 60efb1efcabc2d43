"""Repeated eigenvalues: products for every copy among the k most negative, ours against ARPACK.

Operators ``A = U·diag(d)·Uᵀ`` of dimension ``--n`` whose lowest eigenvalue −0.2 is repeated
``m`` times, followed by −0.19, −0.185, … (30 values) and a positive spectrum up to 1
(‖A‖ = 1); ``U`` is a product of ``--reflections`` random Householder reflections (no n×n
matrix). For each multiplicity and seed, the ``k`` most negative eigenpairs at tol = 1e-4
(``‖Av − λv‖ ≤ tol·‖A‖``) from:

* ours: ``bottom_eigenpairs`` with its defaults (one start vector, probes verify the result);
* ours without the probes (``verify=False``): what the defaults did before them;
* ours with ``block = min(m, k) + 1``: a block cold start, as if the multiplicity were known;
* ARPACK (``scipy.sparse.linalg.eigsh(which="SA")``), with ``curvature.py``'s fair tolerance:
  it stops when ``‖r_i‖ ≤ tol_A·|λ_i|``, and ``tol_A = tol·‖A‖ / min_i |λ_i|`` over the wanted
  pairs makes its test at most as strict as ours on every pair.

Each run reports its products, how many of the ``min(m, k)`` wanted copies of −0.2 it returned
(a value within tol·‖A‖ of −0.2) and its largest eigenvalue error against the true ``k`` lowest,
relative to ‖A‖. A last row does the same on ``digits-mlp`` 64-16-10 at its symmetric saddle
(1,210 parameters; λ₀ = −0.241 sixteen times), with the true spectrum from the dense Hessian.
Product counts do not depend on the machine's load.

Usage::

    python benchmarks/repeated_eigenvalues.py                  # n = 20,000, 3 seeds (minutes)
    python benchmarks/repeated_eigenvalues.py --n 2000 --seeds 0 --multiplicities 2 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as sla
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from ridgerider.core.eigensolver import bottom_eigenpairs
from ridgerider.core.hvp import make_hvp
from ridgerider.problems import create

TOL = 1e-4
REPEATED = -0.2


@dataclass
class Args:
    """Command-line settings."""

    n: int = 20_000
    k: int = 10
    multiplicities: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    reflections: int = 4
    digits: bool = True
    """Also the ``digits-mlp`` saddle row."""
    threads: int = 1
    out: str = "benchmarks/results"


class Householder:
    """``v ↦ U diag(d) Uᵀ v`` with ``U`` a product of random Householder reflections."""

    def __init__(self, d: Tensor, reflections: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        u = torch.randn(reflections, d.numel(), generator=g, dtype=torch.float64)
        self.u = u / u.norm(dim=1, keepdim=True)
        self.d = d

    def _reflect(self, v: Tensor, order: range) -> Tensor:
        for i in order:
            v = v - 2.0 * torch.outer(self.u[i], self.u[i] @ v)
        return v

    def __call__(self, v: Tensor) -> Tensor:
        if v.dim() == 1:
            return self(v[:, None])[:, 0]
        p = self.u.shape[0]
        w = self._reflect(v, range(p - 1, -1, -1))  # Uᵀ v
        return self._reflect(self.d[:, None] * w, range(p))  # U diag(d) Uᵀ v


class Counter:
    """Counts products (a block of b counts b)."""

    def __init__(self, op: Callable[[Tensor], Tensor]) -> None:
        self.op, self.count = op, 0

    def __call__(self, v: Tensor) -> Tensor:
        self.count += 1 if v.dim() == 1 else v.shape[1]
        return self.op(v)


def spectrum(n: int, m: int) -> Tensor:
    """−0.2 ``m`` times, −0.19 … −0.045 in steps of 0.005, then ``[0, 1]`` evenly."""
    negative = [REPEATED] * m + [-0.19 + 0.005 * j for j in range(30)]
    positive = torch.linspace(0.0, 1.0, n - len(negative), dtype=torch.float64)
    return torch.cat([torch.tensor(negative, dtype=torch.float64), positive])


@dataclass(frozen=True)
class Case:
    """An operator and what its answer must be."""

    name: str
    op: Callable[[Tensor], Tensor]
    n: int
    k: int
    lowest: Tensor
    """The true ``k`` lowest eigenvalues."""
    norm: float
    repeated: float
    wanted: int
    """Copies of ``repeated`` among the ``k`` lowest."""


def run(case: Case, solver: str, seed: int) -> dict[str, Any]:
    """One solve: products, copies returned, eigenvalue error, converged, wall seconds."""
    mv = Counter(case.op)
    t = time.perf_counter()
    if solver == "arpack":
        tol_a = TOL * case.norm / float(case.lowest.abs().min())
        lin = sla.LinearOperator(
            (case.n, case.n),
            matvec=lambda x: mv(torch.from_numpy(np.ascontiguousarray(x).ravel())).numpy(),
            dtype=np.float64,
        )
        v0 = np.random.default_rng(seed).standard_normal(case.n)
        values = torch.from_numpy(
            np.sort(sla.eigsh(lin, k=case.k, which="SA", tol=tol_a, v0=v0)[0])
        )
        converged = True  # eigsh raises when it does not converge
    else:
        block = case.wanted + 1 if solver == "block" else None
        res = bottom_eigenpairs(
            mv,
            case.n,
            case.k,
            tol=TOL,
            generator=torch.Generator().manual_seed(seed),
            block=block,
            verify=None if solver == "ours" else False,
        )
        values, converged = res.values, res.converged
    wall = time.perf_counter() - t
    copies = int(((values - case.repeated).abs() <= TOL * case.norm).sum())
    error = float((values - case.lowest).abs().max()) / case.norm
    return {
        "products": mv.count,
        "copies": copies,
        "error": error,
        "converged": converged,
        "wall": wall,
    }


SOLVERS = ("ours", "unverified", "block", "arpack")


def synthetic(n: int, m: int, k: int, reflections: int) -> Case:
    """The Householder operator with multiplicity ``m``."""
    d = spectrum(n, m)
    op = Householder(d, reflections, seed=m)
    return Case(f"m = {m}", op, n, k, torch.sort(d).values[:k], 1.0, REPEATED, min(m, k))


def digits_saddle(k: int) -> Case:
    """``digits-mlp`` 64-16-10 at its permutation-invariant saddle, the R-op as operator."""
    problem = create("digits-mlp", {"hidden": "16", "start": "saddle", "image_size": 8})
    theta = problem.analytic_mis()
    op = make_hvp(problem.loss, theta, analytic=problem.exact_hvp)
    h = op(torch.eye(theta.numel(), dtype=theta.dtype))
    values = torch.linalg.eigvalsh(0.5 * (h + h.T))
    low = float(values[0])
    copies = int(((values - low).abs() <= 1e-9).sum())
    name = f"digits-mlp 64-16-10 saddle (m = {copies}, k = {k})"
    norm = float(values.abs().max())
    return Case(name, op, theta.numel(), k, values[:k], norm, low, min(copies, k))


def measure(case: Case, seeds: list[int]) -> dict[str, Any]:
    """Every solver on ``case`` for every seed, and the medians of their products."""
    runs = {s: [run(case, s, seed) for seed in seeds] for s in SOLVERS}
    row: dict[str, Any] = {"case": case.name, "n": case.n, "k": case.k, "wanted": case.wanted}
    row["runs"] = runs
    row["median"] = {s: statistics.median(r["products"] for r in runs[s]) for s in SOLVERS}
    row["ratio"] = row["median"]["ours"] / row["median"]["arpack"]
    return row


def _copies(runs: list[dict[str, Any]]) -> str:
    """Copies returned over the seeds, e.g. ``2, 2, 2``."""
    return ", ".join(str(r["copies"]) for r in runs)


def print_row(row: dict[str, Any]) -> None:
    """One markdown line: products (medians), copies per seed, ratio, worst error of ours."""
    med, runs = row["median"], row["runs"]
    worst = max(r["error"] for r in runs["ours"])
    ok = all(r["converged"] for r in runs["ours"])
    print(
        f"| {row['case']} | {row['wanted']} | {med['ours']:g} ({_copies(runs['ours'])}) "
        f"| {med['arpack']:g} ({_copies(runs['arpack'])}) | **{row['ratio']:.2f}×** "
        f"| {med['unverified']:g} ({_copies(runs['unverified'])}) "
        f"| {med['block']:g} ({_copies(runs['block'])}) | {worst:.0e} | {ok} |",
        flush=True,
    )


def main(args: Args) -> dict[str, Any]:
    """Every multiplicity (and the digits saddle); prints a markdown table, writes the JSON."""
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; n = {args.n}, k = {args.k}, tol {TOL:g}")
    print(
        "| operator | copies wanted | ours (copies per seed) | ARPACK | ours / ARPACK "
        "| ours, no probes | block min(m, k) + 1 | ours: max error / ‖A‖ | ours converged |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    cases = [synthetic(args.n, m, args.k, args.reflections) for m in args.multiplicities]
    rows = []
    for case in cases + ([digits_saddle(6)] if args.digits else []):
        rows.append(measure(case, args.seeds))
        print_row(rows[-1])
    out = {"threads": torch.get_num_threads(), "tol": TOL, "n": args.n, "k": args.k}
    out |= {"reflections": args.reflections, "seeds": args.seeds, "results": rows}
    path = Path(args.out) / "repeated_eigenvalues.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def parse() -> Args:
    """Command line → :class:`Args`."""
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=d.n)
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--multiplicities", type=int, nargs="+", default=d.multiplicities)
    p.add_argument("--seeds", type=int, nargs="+", default=d.seeds)
    p.add_argument("--reflections", type=int, default=d.reflections)
    p.add_argument("--no-digits", dest="digits", action="store_false")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--out", default=d.out)
    return Args(**vars(p.parse_args()))


if __name__ == "__main__":
    main(parse())
