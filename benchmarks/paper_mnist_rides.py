"""The paper's MNIST regime on digits: one ridge followed for thousands of small steps.

The paper trains its MNIST MLP by approximate RR without branching: from the start it follows
one ridge with a fixed small step ``θ ← θ − α·e``, and after every step updates ``(e, λ)`` by
gradient steps on ``‖(1/λ)·H·e/‖e‖ − e/‖e‖‖²`` with rates ``LR_e`` and ``LR_λ``, the next
``λ`` warm-started from the learned one (§3 "Approximate RR"; Fig. 4: α = 0.00264,
LR_e = 0.00051, minibatches, ~5,000 steps). There is no overlap test and no line search. This
script runs that regime on ``digits-mlp`` (64-128-128-10, 26,122 parameters, full batch) with
:func:`ridgerider.core.approx.approx_update_ridge` (``method="paper"``, one gradient step per
θ-step: three Hessian-vector products):

Fig. 4
    test and train accuracy along the ride of the most negative ridge (descent sign), against
    the paper's two ablations. **Fixed-EV** (``LR_e = 0``) and **Rand.Ridge+** (a random unit
    direction oriented to descend) both move θ along a straight line whatever α is, so instead of
    a sweep over α the line itself is searched: for each of the ``n_ridges`` eigenvectors and
    ``random_dirs`` random directions, the point of lowest *training* loss on
    ``θ₀ + s·d, 0 ≤ s ≤ line_max`` is taken (its test accuracy is what any α and step count
    could reach at best, selected without test data), and the highest test accuracy on every
    fourth point of the line is given beside it as an oracle bound.
Fig. 5
    per-class test accuracy by the index ψ[0] of the followed ridge, averaged over an early
    window of the ride (steps 200–600, as the paper) and over its last fifth, and the step at
    which each class first reached 50 %.

Every figure is selected by training loss, never by test accuracy, except the oracle bound.
Tensors are float32 (the problem's data cast once), one torch thread per process, rides in
``jobs`` processes. α, ``LR_e`` and ``LR_λ`` are ours (the paper's values are for minibatches
of MNIST): chosen by a small sweep on ridge 0, listed in ``benchmarks/README.md``.

    python benchmarks/paper_mnist_rides.py --out benchmarks/results   # ~17 min, 2 processes

With ``--data-dir DIR`` the same figures are computed on MNIST's own IDX files in ``DIR``
(``mnist-mlp``, the first ``--n-train`` images of its seeded permutation; nothing is
downloaded): the paper's 784-128-128-10 network.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ridgerider.core.approx import approx_get_ridges, approx_update_ridge, start_track
from ridgerider.core.curvature import gradient
from ridgerider.problems import create


@dataclass
class Args:
    hidden: str = "128,128"
    data_dir: str = ""
    """MNIST IDX files (the four standard names, plain or gzipped): ``mnist-mlp`` on them
    instead of ``digits-mlp``. Read locally, never downloaded."""
    n_train: int = 10_000
    """``mnist-mlp``: training images used (0: all 60,000)."""
    n_ridges: int = 20
    """Ridges computed at the start: Fig. 5's ψ[0] range and the Fixed-EV lines."""
    steps: int = 30_000
    """Fig. 4: steps of the ride along ridge 0."""
    fig5_steps: int = 5_000
    """Fig. 5: steps of the ride along each ridge."""
    alpha: float = 0.005
    lr_e: float = 0.05
    lr_lambda: float = 0.0
    """0: ``¼·λ₀²`` with λ₀ the ridge's starting eigenvalue."""
    inner: int = 1
    """Gradient steps on (e, λ) per θ-step (the paper: one)."""
    log_every: int = 100
    early: tuple[int, int] = (200, 600)
    """Fig. 5's early window (steps), as in the paper's top panel."""
    line_max: float = 40.0
    line_points: int = 801
    random_dirs: int = 20
    ridges: tuple[int, ...] = field(default_factory=tuple)
    """Fig. 5's ψ[0] values (default: all ``n_ridges``)."""
    seed: int = 0
    threads: int = 1
    """Torch threads per process."""
    jobs: int = 2
    """Processes riding in parallel (each ride is one process's work)."""
    out: Path = Path("benchmarks/results")


def parse() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    for name, value in asdict(Args()).items():
        flag = "--" + name.replace("_", "-")
        if name in ("early", "ridges"):
            p.add_argument(flag, nargs="*", type=int, default=list(value))
        else:
            p.add_argument(flag, type=type(value), default=value)
    ns = vars(p.parse_args())
    ns["early"], ns["ridges"] = tuple(ns["early"]), tuple(ns["ridges"])
    return Args(**ns)


def problem_f32(args: Args) -> tuple[Any, Tensor]:
    """The problem (``digits-mlp``, or ``mnist-mlp`` on ``--data-dir``) with its data cast to
    float32, and its documented start."""
    if args.data_dir:
        params = {"hidden": args.hidden, "data_dir": args.data_dir, "n_train": args.n_train}
        problem = create("mnist-mlp", params)
    else:
        problem = create("digits-mlp", {"hidden": args.hidden})
    theta = problem.analytic_mis().float()  # drawn in float64, as documented, then cast
    problem.x_train, problem.x_test = problem.x_train.float(), problem.x_test.float()
    problem.dtype = torch.float32
    return problem, theta


def record(problem: Any, theta: Tensor, step: int, extra: dict[str, float]) -> dict[str, Any]:
    m = problem.metrics(theta)
    return {
        "step": step,
        "loss": m["train_loss"],
        "train": m["train_accuracy"],
        "test": m["test_accuracy"],
        "per_class": m["per_class_accuracy"],
        **extra,
    }


def follow(problem: Any, theta: Tensor, spectrum: Any, index: int, steps: int, args: Args) -> dict:
    """The paper's regime along ridge ``index`` (descent sign): the accuracy curve."""
    lam0 = float(spectrum.values[index])
    grad = gradient(problem.loss, theta)
    sign = -1 if float(grad @ spectrum.vectors[:, index]) > 0 else 1
    track = start_track(spectrum, index, sign)
    lr_lambda = args.lr_lambda or 0.25 * lam0**2
    curve = [record(problem, theta, 0, {"lambda": lam0, "rayleigh": lam0})]
    hvps, t0 = 0, time.perf_counter()
    for step in range(1, steps + 1):
        theta = theta + args.alpha * track.direction
        up = approx_update_ridge(
            problem.loss,
            theta,
            track,
            method="paper",
            steps=args.inner,
            lr_e=args.lr_e,
            lr_lambda=lr_lambda,
        )
        track, hvps = up.track, hvps + up.hvps
        if step % args.log_every == 0 or step == steps:
            extra = {"lambda": track.eigenvalue, "rayleigh": up.eigenvalue}
            curve.append(record(problem, theta, step, extra))
            if not math.isfinite(curve[-1]["loss"]):
                break
    best = min(curve, key=lambda r: r["loss"])
    return {
        "index": index,
        "sign": sign,
        "eigenvalue": lam0,
        "curve": curve,
        "best_by_train_loss": best,
        "hvps": hvps,
        "seconds": time.perf_counter() - t0,
    }


def line(
    problem: Any, theta: Tensor, grad: Tensor, direction: Tensor, args: Args
) -> dict[str, Any]:
    """The straight line θ₀ + s·d (d oriented to descend): its best point by training loss.

    ``grad`` is ∇L(θ₀), shared by every line from the same start.
    """
    d = direction / direction.norm()
    if float(grad @ d) > 0:
        d = -d
    distances = torch.linspace(0.0, args.line_max, args.line_points).tolist()
    with torch.no_grad():
        losses = [float(problem.loss(theta + s * d)) for s in distances]
    s = distances[min(range(len(losses)), key=losses.__getitem__)]
    best = record(problem, theta + s * d, 0, {"distance": s})
    sample = distances[:: max(1, len(distances) // 200)]
    oracle = max(problem.metrics(theta + t * d)["test_accuracy"] for t in sample)
    return {"best_by_train_loss": best, "oracle_test": max(oracle, best["test"])}


def follow_job(args: Args, spectrum: Any, index: int, steps: int) -> dict[str, Any]:
    """:func:`follow` in a worker process (one torch thread, the problem rebuilt there)."""
    torch.set_num_threads(args.threads)
    problem, theta = problem_f32(args)
    return follow(problem, theta, spectrum, index, steps, args)


def learned_at(curve: list[dict[str, Any]], level: float = 0.5) -> list[int | None]:
    """Per class, the first recorded step at which its test accuracy reached ``level``."""
    out: list[int | None] = []
    for c in range(len(curve[0]["per_class"])):
        hit = next((r["step"] for r in curve if r["per_class"][c] >= level), None)
        out.append(hit)
    return out


def window(curve: list[dict[str, Any]], lo: int, hi: int) -> list[float]:
    """Per-class test accuracy averaged over the records with ``lo ≤ step ≤ hi``."""
    rows = [r["per_class"] for r in curve if lo <= r["step"] <= hi] or [curve[-1]["per_class"]]
    return [sum(r[c] for r in rows) / len(rows) for c in range(len(rows[0]))]


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    problem, theta = problem_f32(args)
    t0 = time.perf_counter()
    spectrum = approx_get_ridges(
        problem.loss,
        theta,
        args.n_ridges,
        tol=1e-3,
        generator=torch.Generator().manual_seed(args.seed),
    )
    print(
        f"start: loss {float(problem.loss(theta)):.3f}, {args.n_ridges} ridges "
        f"{spectrum.values[0]:.3f} … {spectrum.values[-1]:.3f} "
        f"({spectrum.matvecs} products, {time.perf_counter() - t0:.1f} s)",
        flush=True,
    )

    indices = args.ridges or tuple(range(args.n_ridges))
    jobs = [(0, args.steps)] + [
        (i, args.fig5_steps) for i in indices if i != 0 or args.fig5_steps > args.steps
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = {job: pool.submit(follow_job, args, spectrum, *job) for job in jobs}
        # The ablations' lines are cheap (forward passes): computed here meanwhile.
        grad = gradient(problem.loss, theta)
        fixed = [
            line(problem, theta, grad, spectrum.vectors[:, i], args) for i in range(args.n_ridges)
        ]
        g = torch.Generator().manual_seed(args.seed + 1)
        rand = [
            line(problem, theta, grad, torch.randn(theta.numel(), generator=g), args)
            for _ in range(args.random_dirs)
        ]
        for name, rows in (("Fixed-EV", fixed), ("Rand.Ridge+", rand)):
            top = max(rows, key=lambda r: r["best_by_train_loss"]["test"])
            print(
                f"{name}: best line point test {top['best_by_train_loss']['test']:.3f} "
                f"(oracle {max(r['oracle_test'] for r in rows):.3f})",
                flush=True,
            )
        rides = {job: future.result() for job, future in futures.items()}
    fig4 = rides[(0, args.steps)]
    b = fig4["best_by_train_loss"]
    print(
        f"approx RR, ridge 0: best train loss {b['loss']:.3f} at step {b['step']}: "
        f"test {b['test']:.3f} train {b['train']:.3f} ({fig4['hvps']} products, "
        f"{fig4['seconds']:.0f} s)",
        flush=True,
    )

    fig5 = []
    for i in indices:
        ride = rides.get((i, args.fig5_steps)) or fig4
        curve = [r for r in ride["curve"] if r["step"] <= args.fig5_steps]
        late = (int(0.8 * args.fig5_steps), args.fig5_steps)
        fig5.append(
            {
                "index": i,
                "eigenvalue": ride["eigenvalue"],
                "early": window(curve, *args.early),
                "late": window(curve, *late),
                "learned_at": learned_at(curve),
                "final": curve[-1],
            }
        )
        print(
            f"ψ[0] = {i}: test {curve[-1]['test']:.3f}, classes past 50 % at steps "
            f"{fig5[-1]['learned_at']}",
            flush=True,
        )

    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "n": theta.numel(),
        "spectrum": spectrum.values.tolist(),
        "fig4": fig4,
        "fixed_ev": fixed,
        "random": rand,
        "fig5": fig5,
    }
    (args.out / "paper_mnist_rides.json").write_text(json.dumps(result, indent=1))
    chart(result, args.out / "paper_mnist_rides.png")


def chart(result: dict[str, Any], path: Path) -> None:
    """Fig. 4 (accuracy along the ride, the ablations' best line points) and Fig. 5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(16, 4.5))
    curve = result["fig4"]["curve"]
    steps = [r["step"] for r in curve]
    ax[0].plot(steps, [100 * r["test"] for r in curve], label="approx. RR, test")
    ax[0].plot(steps, [100 * r["train"] for r in curve], label="approx. RR, train", alpha=0.6)
    ablations = (("Fixed-EV", result["fixed_ev"], "--"), ("Rand.Ridge+", result["random"], ":"))
    for name, rows, style in ablations:
        top = max(100 * r["best_by_train_loss"]["test"] for r in rows)
        ax[0].axhline(top, linestyle=style, color="gray", label=f"{name}: best line point, test")
    data = "MNIST" if result["args"].get("data_dir") else "digits"
    ax[0].set(xlabel="step", ylabel="accuracy (%)", title=f"Fig. 4 on {data}: ridge 0")
    ax[0].legend(fontsize=8)
    for k, key in enumerate(("early", "late")):
        grid = [[100 * x for x in row[key]] for row in result["fig5"]]
        im = ax[k + 1].imshow(grid, aspect="auto", vmin=0, vmax=100, cmap="viridis")
        ax[k + 1].set(
            xlabel="digit",
            ylabel="ψ[0] (index of the first ridge)",
            title=f"Fig. 5 on {data}: per-class test accuracy, {key}",
            xticks=range(10),
            yticks=range(len(grid)),
            yticklabels=[row["index"] for row in result["fig5"]],
        )
    fig.colorbar(im, ax=ax[2])
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
