"""Cost of curvature on digits MLPs: HVP methods, and the 10 most negative eigenpairs.

Prints markdown tables (the torch thread count is in every table) for three ``digits-mlp``
networks: ``10k``, 64-72-64-10 on the 8×8 digits (10,002 parameters); ``100k``, the paper's
MNIST network 784-128-128-10 on the digits resampled to 28×28 (118,282); and ``100k-wide``,
64-320-240-10 (100,250), dominated by its hidden-to-hidden layer:

1. HVP time over gradient time for every method of ``make_hvp`` (single vectors and blocks).
2. Products and wall time (also in gradients) for the k = 10 most negative eigenpairs at
   tol = 1e-4 (``‖Hv − λv‖ ≤ tol·‖H‖``): ours cold; ours warm after steps of 0.01 %, 0.1 % and
   1 % of ‖θ‖ along the most negative eigenvector; the mean over a 10-step ride of 1 % steps,
   against ours cold at the same ten points; ARPACK (``eigsh(which="SA")``); PyHessian-style
   power iteration with deflation; and ``torch.lobpcg``.

Every solver multiplies with the same operator, the one the engine uses: ``digits-mlp``'s
hand-written R-op (``make_hvp``'s ``auto`` choice when the problem has one).

Fair tolerances. ARPACK stops when ``‖r_i‖ ≤ tol_A·|λ_i|``; we pass
``tol_A = tol·‖H‖ / min_i |λ_i|`` over the wanted pairs (‖H‖ and λ from a tight reference),
so ARPACK's test is at most as strict as ours on every pair. Power iteration stops each vector at
our residual test; ``torch.lobpcg`` gets ``tol`` (its test divides by ``‖H‖ + |λ|``, which is
looser still). Baselines that cannot finish within a cap of ``--cap``× our cold count stop there
and are reported as such. Eigenvalue errors are against a reference solve at tol 1e-9, relative
to ‖H‖.

Usage::

    python benchmarks/curvature.py                 # all networks, both points (minutes)
    python benchmarks/curvature.py --quick         # 10k only, the start point, small caps
    python benchmarks/curvature.py --json out.json # also write the numbers
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse.linalg as sla
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from ridgerider.core.eigensolver import bottom_eigenpairs
from ridgerider.core.hvp import HVP_METHODS, HVPOperator, make_hvp
from ridgerider.problems.digits import DigitsMLP, DigitsMLPParams


@dataclass(frozen=True)
class Net:
    """A ``digits-mlp`` network of the benchmark."""

    hidden: tuple[int, ...]
    side: int
    """Image side: 8 for the digits as they are, 28 for MNIST's 784 inputs."""
    lr: float
    """Gradient-descent rate of the ``trained`` point (0.5 diverges on 784 inputs)."""


SIZES: dict[str, Net] = {
    "10k": Net((72, 64), 8, 0.5),
    "100k": Net((128, 128), 28, 0.1),
    "100k-wide": Net((320, 240), 8, 0.5),
}
"""``100k`` is the paper's MNIST network; ``100k-wide`` is dominated by its hidden-to-hidden
layer, whose exact HVP needs ~1.85× a gradient's matrix-product FLOPs (README)."""
K, TOL = 10, 1e-4


@dataclass
class Counter:
    """Wraps an HVP operator: counts products (a block of b counts b) and their time."""

    op: Callable[[Tensor], Tensor]
    count: int = 0
    seconds: float = 0.0
    cap: int | None = None

    def __call__(self, v: Tensor) -> Tensor:
        self.count += 1 if v.dim() == 1 else v.shape[1]
        if self.cap is not None and self.count > self.cap:
            raise BudgetExceededError
        t = time.perf_counter()
        out = self.op(v)
        self.seconds += time.perf_counter() - t
        return out


class BudgetExceededError(RuntimeError):
    """A baseline reached its product cap."""


def progress(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Row:
    name: str
    products: int | None
    wall: float | None
    grads: float | None
    err: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def gradient_seconds(problem: DigitsMLP, theta: Tensor, reps: int) -> float:
    """Median wall time of one gradient (forward + backward) at θ."""
    times = []
    for _ in range(reps + 2):
        x = theta.detach().clone().requires_grad_(True)
        t = time.perf_counter()
        torch.autograd.grad(problem.loss(x), x)
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:])


def hvp_table(problem: DigitsMLP, theta: Tensor, reps: int) -> list[tuple[str, float]]:
    """HVP time / gradient time per method, interleaved with gradients to share the noise."""
    n = problem.n_params
    g = torch.Generator().manual_seed(0)
    v = torch.randn(n, generator=g, dtype=theta.dtype)
    block = torch.randn(n, 8, generator=g, dtype=theta.dtype)
    ops = {m: make_hvp(problem.loss, theta, m) for m in HVP_METHODS}
    ops["analytic"] = make_hvp(problem.loss, theta, "analytic", analytic=problem.exact_hvp)
    cases: dict[str, Callable[[], Any]] = {}
    for m, op in ops.items():
        cases[f"{m} (1 vector)"] = lambda op=op: op(v)
        cases[f"{m} (block of 8, per vector)"] = lambda op=op: op(block)
    cases["build the cached graph (once per θ)"] = lambda: make_hvp(problem.loss, theta, "cached")
    cases["build the analytic operator (once per θ)"] = lambda: problem.exact_hvp(theta)
    per = {name: 8 if "block" in name else 1 for name in cases}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    grads: list[float] = []
    names = list(cases)
    for rep in range(reps + 1):
        # Each repetition starts at a different case, so no method always runs right after
        # the graph build (whose allocations slow the next call) or first after a warm-up.
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            fn = cases[name]
            x = theta.detach().clone().requires_grad_(True)
            t = time.perf_counter()
            torch.autograd.grad(problem.loss(x), x)
            tg = time.perf_counter() - t
            t = time.perf_counter()
            fn()
            th = time.perf_counter() - t
            if rep:  # the first round warms up
                grads.append(tg)
                samples[name].append(th / per[name])
    tg = statistics.median(grads)
    return [(name, statistics.median(s) / tg) for name, s in samples.items()]


def engine_hvp(problem: DigitsMLP, theta: Tensor) -> HVPOperator:
    """The product every solver here multiplies with: the engine's choice (the problem's R-op)."""
    return make_hvp(problem.loss, theta, analytic=problem.exact_hvp)


def power_deflation(matvec: Counter, n: int, k: int, norm: float, g: torch.Generator) -> Tensor:
    """PyHessian-style power iteration with deflation, on ``σI − H`` to reach the bottom.

    Each vector iterates until our residual test passes (or the cap stops the whole run).
    """
    sigma = 1.05 * norm
    found: list[Tensor] = []
    values: list[float] = []
    for _ in range(k):
        x = torch.randn(n, generator=g, dtype=torch.float64)
        while True:
            if found:
                q = torch.stack(found, dim=1)
                x = x - q @ (q.T @ x)
            x = x / x.norm()
            hx = matvec(x)
            lam = float(x @ hx)
            if float((hx - lam * x).norm()) <= TOL * norm:
                break
            x = sigma * x - hx
        found.append(x)
        values.append(lam)
    return torch.tensor(sorted(values), dtype=torch.float64)


class _Operator(torch.Tensor):
    """An [n, n] stand-in for ``torch.lobpcg`` whose matmul is an HVP (no n×n memory).

    ``torch.lobpcg`` hands tensor subclasses to ``__torch_function__`` as a whole, so the solver
    body (``torch._lobpcg._lobpcg``) is called from here with the products intercepted.
    """

    matvec: Counter

    @staticmethod
    def make(matvec: Counter, n: int) -> _Operator:
        base = torch.zeros(1, dtype=torch.float64).expand(n, n)
        out = torch.Tensor._make_subclass(_Operator, base)
        out.matvec = matvec
        return out

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.lobpcg:
            return torch._lobpcg._lobpcg(*args, **kwargs)
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__) and isinstance(
            args[0], _Operator
        ):
            return args[0].matvec(args[1].as_subclass(torch.Tensor))
        return super().__torch_function__(func, types, args, kwargs)


def eigen_rows(
    problem: DigitsMLP, theta: Tensor, tg: float, cap_factor: float, quick: bool
) -> tuple[list[Row], dict[str, Any]]:
    """Every solver of section 2 at θ."""
    n = problem.n_params
    rows: list[Row] = []

    def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    progress("reference solve")
    op = engine_hvp(problem, theta)
    ref = bottom_eigenpairs(op, n, K + 5, tol=1e-9, generator=torch.Generator().manual_seed(99))
    norm = ref.norm_estimate
    lam = ref.values[:K]

    def err(values: Tensor) -> float:
        m = min(len(values), K)
        return float((torch.sort(values).values[:m] - lam[:m]).abs().max()) / norm

    # Ours, cold.
    mv = Counter(engine_hvp(problem, theta))
    cold, wall = timed(lambda: bottom_eigenpairs(mv, n, K, tol=TOL, generator=gen(0)))
    rows.append(Row("ours, cold", cold.matvecs, wall, wall / tg, err(cold.values)))
    cap = int(cap_factor * cold.matvecs)
    # At tol·‖H‖ the residual test cannot separate eigenvalues closer than that; a tighter
    # solve shows what ARPACK-level eigenvalue accuracy costs us.
    mv = Counter(engine_hvp(problem, theta))
    tight, wall = timed(lambda: bottom_eigenpairs(mv, n, K, tol=TOL / 10, generator=gen(0)))
    rows.append(
        Row(f"ours, cold, tol {TOL / 10:g}", tight.matvecs, wall, wall / tg, err(tight.values))
    )

    progress(f"ours cold: {cold.matvecs}; ARPACK")
    mv = Counter(engine_hvp(problem, theta))
    tol_a = TOL * norm / float(lam.abs().min())
    lin = sla.LinearOperator(
        (n, n),
        matvec=lambda x: mv(torch.from_numpy(np.ascontiguousarray(x).ravel())).numpy(),
        dtype=np.float64,
    )
    v0 = np.random.default_rng(0).standard_normal(n)
    vals_a, wall = timed(lambda: sla.eigsh(lin, k=K, which="SA", tol=tol_a, v0=v0)[0])
    arpack = mv.count
    rows.append(
        Row(
            "ARPACK eigsh(SA)",
            arpack,
            wall,
            wall / tg,
            err(torch.from_numpy(vals_a)),
            f"tol_A = {tol_a:.2e}",
        )
    )

    progress(f"ARPACK: {mv.count}; warm starts")
    init = torch.cat([cold.vectors, cold.guards], dim=1)
    step_dir = cold.vectors[:, 0]
    for frac in (1e-4, 1e-3, 1e-2):
        moved = theta - frac * float(theta.norm()) * step_dir
        mv = Counter(engine_hvp(problem, moved))
        warm, wall = timed(
            lambda mv=mv: bottom_eigenpairs(mv, n, K, tol=TOL, init=init, norm=cold.norm_estimate)
        )
        rows.append(
            Row(
                f"ours, warm after a {100 * frac:g} % step",
                warm.matvecs,
                wall,
                wall / tg,
                None,
                "" if warm.converged else "not converged",
                {"vs_arpack": warm.matvecs / arpack, "vs_cold": warm.matvecs / cold.matvecs},
            )
        )

    # A 10-step ride of 1 % steps, each solve warm-started from the previous one, and a cold
    # solve at every point of the ride (the cold count the warm one saves against).
    counts, walls, colds, cold_walls = [], [], [], []
    x, prev, e = theta.clone(), cold, cold.vectors[:, 0]
    for i in range(3 if quick else 10):
        x = x - 0.01 * float(theta.norm()) * e
        op = engine_hvp(problem, x)
        here, wall = timed(
            lambda op=op, i=i: bottom_eigenpairs(Counter(op), n, K, tol=TOL, generator=gen(100 + i))
        )
        colds.append(here.matvecs)
        cold_walls.append(wall)
        mv = Counter(op)
        res, wall = timed(
            lambda mv=mv, prev=prev: bottom_eigenpairs(
                mv,
                n,
                K,
                tol=TOL,
                init=torch.cat([prev.vectors, prev.guards], dim=1),
                norm=prev.norm_estimate,
            )
        )
        j = int((res.vectors.T @ e).abs().argmax())  # follow the ridge by overlap
        e = res.vectors[:, j] * (1.0 if float(res.vectors[:, j] @ e) >= 0 else -1.0)
        counts.append(res.matvecs)
        walls.append(wall)
        prev = res
    mean, cold_mean = statistics.mean(counts), statistics.mean(colds)
    rows.append(
        Row(
            f"ours, cold at the same {len(colds)} points of the ride, mean",
            round(cold_mean),
            statistics.mean(cold_walls),
            statistics.mean(cold_walls) / tg,
            None,
            "counts " + ",".join(map(str, colds)),
        )
    )
    rows.append(
        Row(
            f"ours, warm, mean over a {len(counts)}-step ride of 1 % steps",
            round(mean),
            statistics.mean(walls),
            statistics.mean(walls) / tg,
            None,
            "counts "
            + ",".join(map(str, counts))
            + f"; × cold at the same points {mean / cold_mean:.2f}",
            {
                "vs_arpack": mean / arpack,
                "vs_cold": mean / cold.matvecs,
                "vs_cold_same_points": mean / cold_mean,
            },
        )
    )

    progress(f"ride: {counts}; power iteration")
    mv = Counter(engine_hvp(problem, theta), cap=cap)
    t = time.perf_counter()
    try:
        vals_p = power_deflation(mv, n, K, norm, gen(1))
        rows.append(
            Row(
                "power iteration + deflation",
                mv.count,
                time.perf_counter() - t,
                (time.perf_counter() - t) / tg,
                err(vals_p),
            )
        )
    except BudgetExceededError:
        wall = time.perf_counter() - t
        rows.append(
            Row(
                "power iteration + deflation",
                None,
                wall,
                wall / tg,
                None,
                f"not done after {cap} products ({cap_factor:g}× ours cold)",
            )
        )

    progress("torch.lobpcg")
    mv = Counter(engine_hvp(problem, theta), cap=cap)
    x0 = torch.randn(n, K, generator=gen(2), dtype=torch.float64)
    t = time.perf_counter()
    try:
        vals_l, _ = torch.lobpcg(
            _Operator.make(mv, n), k=K, X=x0, largest=False, tol=TOL, niter=100_000
        )
        rows.append(
            Row(
                "torch.lobpcg",
                mv.count,
                time.perf_counter() - t,
                (time.perf_counter() - t) / tg,
                err(vals_l.as_subclass(torch.Tensor)),
            )
        )
    except BudgetExceededError:
        wall = time.perf_counter() - t
        rows.append(
            Row(
                "torch.lobpcg",
                None,
                wall,
                wall / tg,
                None,
                f"not done after {cap} products ({cap_factor:g}× ours cold)",
            )
        )
    info = {"norm": norm, "lambda": lam.tolist(), "arpack": arpack, "cold": cold.matvecs}
    return rows, info


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def point(problem: DigitsMLP, which: str, lr: float) -> Tensor:
    """``init``: the problem's documented start; ``trained``: 150 full-batch GD steps from it."""
    theta = problem.start()
    if which == "trained":
        for _ in range(150):
            x = theta.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(problem.loss(x), x)
            theta = theta - lr * g
    return theta


def network(net: Net) -> DigitsMLP:
    """``digits-mlp`` with the network's hidden widths on images of its side."""
    return DigitsMLP(DigitsMLPParams(hidden=net.hidden, image_size=net.side))


def shape_name(problem: DigitsMLP) -> str:
    return "-".join(map(str, problem.sizes))


def fmt(v: float | int | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


@dataclass
class Args:
    sizes: list[str] = field(default_factory=lambda: list(SIZES))
    points: list[str] = field(default_factory=lambda: ["init", "trained"])
    threads: int = 1
    reps: int = 9
    """Timing repetitions for the HVP ratios."""
    cap: float = 12.0
    """Baselines stop after this many times our cold count of products."""
    quick: bool = False
    """10k only, the start point, a 3-step ride, 3 repetitions."""
    json: str | None = None


def report(
    size: str,
    shape: str,
    which: str,
    n: int,
    tg: float,
    acc: float,
    threads: int,
    ratios: list[tuple[str, float]],
    rows: list[Row],
    info: dict[str, Any],
) -> None:
    """Print one (network, point) section as markdown."""
    label = f"{size} MLP {shape} (n = {n:,}), θ = {which}"
    print(
        f"\n## {label}\n\ntorch threads: {threads}; one gradient: {tg * 1e3:.1f} ms; "
        f"train accuracy {acc:.3f}\n"
    )
    print(f"| HVP method ({threads} thread) | time / gradient |\n|---|---|")
    for name, r in ratios:
        print(f"| {name} | {r:.2f} |")
    print(
        f"\nk = {K}, tol = {TOL:g}·‖H‖, ‖H‖ ≈ {info['norm']:.3g}, "
        f"λ_1..λ_k = {info['lambda'][0]:.4g} … {info['lambda'][-1]:.4g}\n"
    )
    print(
        f"| solver ({threads} thread) | products | × ARPACK | × ours cold | wall s | "
        "wall in gradients | max eigenvalue error / ‖H‖ | note |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        xa = None if r.products is None else r.products / info["arpack"]
        xc = None if r.products is None else r.products / info["cold"]
        print(
            f"| {r.name} | {fmt(r.products, 'd')} | {fmt(xa, '.2f')} | {fmt(xc, '.2f')} | "
            f"{fmt(r.wall, '.2f')} | {fmt(r.grads, '.0f')} | {fmt(r.err, '.1e')} | {r.note} |"
        )


def main(args: Args) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy/scipy BLAS too: idle threads spin on shared cores
    sizes = ["10k"] if args.quick else args.sizes
    points = ["init"] if args.quick else args.points
    reps = 3 if args.quick else args.reps
    threads = torch.get_num_threads()
    out: dict[str, Any] = {"threads": threads, "k": K, "tol": TOL, "results": []}
    for size in sizes:
        net = SIZES[size]
        problem = network(net)
        shape = shape_name(problem)
        for which in points:
            theta = point(problem, which, net.lr)
            tg = gradient_seconds(problem, theta, 7)
            acc = problem.metrics(theta)["train_accuracy"]
            ratios = hvp_table(problem, theta, reps)
            rows, info = eigen_rows(problem, theta, tg, args.cap, args.quick)
            report(
                size,
                shape,
                which,
                problem.n_params,
                tg,
                acc,
                threads,
                ratios,
                rows,
                info,
            )
            out["results"].append(
                {
                    "size": size,
                    "shape": shape,
                    "point": which,
                    "n": problem.n_params,
                    "gradient_s": tg,
                    "train_accuracy": acc,
                    "hvp_ratios": dict(ratios),
                    **info,
                    "rows": [r.__dict__ for r in rows],
                }
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


def add_network_options(p: argparse.ArgumentParser, d: Any) -> None:
    """``--sizes``, ``--points`` and ``--threads``, defaulting to ``d``'s fields."""
    p.add_argument("--sizes", nargs="+", default=d.sizes, choices=sorted(SIZES))
    p.add_argument("--points", nargs="+", default=d.points, choices=["init", "trained"])
    p.add_argument("--threads", type=int, default=d.threads)


def parse() -> Args:
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_options(p, d)
    p.add_argument("--reps", type=int, default=d.reps)
    p.add_argument("--cap", type=float, default=d.cap)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=d.json)
    return Args(**vars(p.parse_args()))


if __name__ == "__main__":
    main(parse())
