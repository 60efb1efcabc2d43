"""What a block method can do from a warm block: block Krylov without restarts, against ours.

After a step that moves θ by ``--step`` of ‖θ‖ along the most negative eigenvector (the warm
start of ``curvature.py``), this script builds the block Krylov space
``span{X, HX, H²X, …}`` of the previous eigenvectors ``X`` (the 10 wanted, and the 10 plus the
3 guard vectors ``bottom_eigenpairs`` returns) one block at a time, with no restart and
Rayleigh–Ritz over the whole space, and counts the products until all k = 10 residuals meet
``‖Hx − μx‖ ≤ tol·‖H‖``. LOBPCG's and block Lanczos' iterates after j block iterations lie in
the space of degree j, so this is about the best those methods can do from the same start;
``bottom_eigenpairs`` warm from the same 13 vectors (as the engine calls it) and from the 10
alone is the reference (its block phase expands only the unconverged pairs' residuals). The
networks and points are ``curvature.py``'s; product counts do not depend on the machine's load.

Usage::

    python benchmarks/warm_block_krylov.py                     # all networks, both points
    python benchmarks/warm_block_krylov.py --sizes 10k --points init
    python benchmarks/warm_block_krylov.py --step 0.01          # after a 1 % step
    python benchmarks/warm_block_krylov.py --hidden 8,8        # a small custom network
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from curvature import (  # a sibling script: its directory is sys.path[0] when run
    SIZES,
    TOL,
    K,
    Net,
    add_network_options,
    engine_hvp,
    gen,
    network,
    point,
    progress,
    shape_name,
)
from ridgerider.core.eigensolver import bottom_eigenpairs


@dataclass
class Args:
    """Command-line settings."""

    sizes: list[str] = field(default_factory=lambda: list(SIZES))
    points: list[str] = field(default_factory=lambda: ["init", "trained"])
    hidden: str | None = None
    step: float = 1e-3
    max_degree: int = 40
    threads: int = 1
    out: str = "benchmarks/results"


def block_krylov(
    matvec: Callable[[Tensor], Tensor], start: Tensor, k: int, threshold: float, max_degree: int
) -> Iterator[tuple[int, float]]:
    """Products used and the worst of the ``k`` lowest Ritz residuals over ``threshold``, for
    the block Krylov space of ``start``'s columns at degree 0, 1, … (Rayleigh–Ritz over all)."""
    q, _ = torch.linalg.qr(start)
    blocks, images = [q], [matvec(q)]
    used = q.shape[1]
    for degree in range(max_degree + 1):
        basis, image = torch.cat(blocks, 1), torch.cat(images, 1)
        t = basis.T @ image
        mu, y = torch.linalg.eigh((t + t.T) / 2)
        x = basis @ y[:, :k]
        residuals = (image @ y[:, :k] - x * mu[:k]).norm(dim=0)
        yield used, float(residuals.max()) / threshold
        if degree == max_degree:
            return
        w = images[-1]
        for _ in range(2):  # block Gram–Schmidt, twice is enough
            w = w - basis @ (basis.T @ w)
        qn, r = torch.linalg.qr(w)
        diag = r.diagonal().abs()
        qn = qn[:, diag > 1e-10 * float(diag.max())]
        if qn.shape[1] == 0:
            return
        blocks.append(qn)
        images.append(matvec(qn))
        used += qn.shape[1]


def products_to_converge(
    matvec: Callable[[Tensor], Tensor], start: Tensor, threshold: float, max_degree: int
) -> tuple[int | None, list[tuple[int, float]]]:
    """Products at which every wanted residual first meets the threshold (None: not within
    ``max_degree``) and the trace of (products, worst residual / threshold)."""
    trace = []
    for used, worst in block_krylov(matvec, start, K, threshold, max_degree):
        trace.append((used, worst))
        if worst <= 1.0:
            return used, trace
    return None, trace


def measure(problem: Any, theta: Tensor, step: float, max_degree: int) -> dict[str, Any]:
    """Ours cold and warm, and the block Krylov spaces of the 10 and of the 13 warm vectors."""
    n = problem.n_params
    cold = bottom_eigenpairs(engine_hvp(problem, theta), n, K, tol=TOL, generator=gen(0))
    threshold = TOL * cold.norm_estimate
    moved = theta - step * float(theta.norm()) * cold.vectors[:, 0]
    warm_block = torch.cat([cold.vectors, cold.guards], 1)
    op = engine_hvp(problem, moved)  # one operator at the moved point for every solver
    ours = bottom_eigenpairs(op, n, K, tol=TOL, init=warm_block, norm=cold.norm_estimate)
    alone = bottom_eigenpairs(op, n, K, tol=TOL, init=cold.vectors, norm=cold.norm_estimate)
    out: dict[str, Any] = {"cold": cold.matvecs, "warm": ours.matvecs, "krylov": {}}
    out["warm_from_10"] = alone.matvecs
    for name, start in (("10", cold.vectors), ("13", warm_block)):
        progress(f"block Krylov from {name} warm vectors")
        used, trace = products_to_converge(op, start, threshold, max_degree)
        out["krylov"][name] = {"products": used, "trace": trace}
    return out


def _products(run: dict[str, Any]) -> str:
    """A block Krylov run's products, or ``>N`` when it stopped unconverged after N."""
    return str(run["products"]) if run["products"] is not None else f">{run['trace'][-1][0]}"


def main(args: Args) -> dict[str, Any]:
    """Every requested network and point; prints a markdown table, writes the JSON."""
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    nets: dict[str, Net] = (
        {"custom": Net(tuple(int(h) for h in args.hidden.split(",")), 8, 0.5)}
        if args.hidden
        else {s: SIZES[s] for s in args.sizes}
    )
    results = []
    print(f"torch threads: {torch.get_num_threads()}; k = {K}, tol {TOL:g}, step {args.step:g}")
    print(
        "| network | point | ours cold | ours warm from 13 | from 10 "
        "| block Krylov from 10 | from 13 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for size, net in nets.items():
        problem = network(net)
        for which in args.points:
            progress(f"{size} {which}")
            row = measure(problem, point(problem, which, net.lr), args.step, args.max_degree)
            row |= {"size": size, "shape": shape_name(problem), "point": which}
            results.append(row)
            krylov = " | ".join(_products(row["krylov"][b]) for b in ("10", "13"))
            print(
                f"| {size} ({row['shape']}) | {which} | {row['cold']} | {row['warm']} "
                f"| {row['warm_from_10']} | {krylov} |",
                flush=True,
            )
    out = {"threads": torch.get_num_threads(), "k": K, "tol": TOL, "step": args.step}
    out["results"] = results
    name = "warm_block_krylov" + ("" if args.step == Args.step else f"_step{args.step:g}")
    path = Path(args.out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def parse() -> Args:
    """Command line → :class:`Args`."""
    d = Args()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_options(p, d)
    p.add_argument("--hidden", default=d.hidden, help="comma-separated widths (8×8 digits)")
    p.add_argument("--step", type=float, default=d.step, help="fraction of ‖θ‖")
    p.add_argument("--max-degree", type=int, default=d.max_degree)
    p.add_argument("--out", default=d.out)
    return Args(**vars(p.parse_args()))


if __name__ == "__main__":
    main(parse())
