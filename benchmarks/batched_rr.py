"""Batched against looped exact Ridge Rider: branch-steps per second.

From ``--replicates`` seeded perturbations of each problem's MIS (scale 1e-3, as independent
runs do), the first-level ridges (the N most negative eigenpairs, both signs) are ridden for at
most ``--steps`` steps twice: one ride after another with
:func:`ridgerider.core.ridge.ride` (a Hessian and an ``eigh`` per candidate step), and all
together with :func:`ridgerider.core.batched.ride_batched` (one vmapped Hessian and one batched
``eigh`` per round). Both must end in the same places (checked); the figure is accepted ride steps
per second of wall time, best of ``--repeats``.

    python benchmarks/batched_rr.py
"""

from __future__ import annotations

import argparse
import time

import torch

from ridgerider.core import RRSettings, find_mis
from ridgerider.core.batched import can_vectorize, ride_batched
from ridgerider.core.ridge import get_ridges, ride
from ridgerider.problems import create

CASES = [
    ("lever-game", {}),
    ("tree-rl", {"depth": 6, "tree_seed": 0}),
    ("tree-rl", {"depth": 8, "tree_seed": 0}),
]


def best_of(repeats: int, fn):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def one_case(name: str, params: dict[str, int], args: argparse.Namespace) -> str:
    """One table row: looped and batched rides of the same branches."""
    problem = create(name, params)
    hess = None if args.autograd else problem.hessian
    settings = RRSettings(**problem.default_settings())
    mis = find_mis(problem).theta
    gen = torch.Generator().manual_seed(0)
    starts, ridges = [], []
    for _ in range(args.replicates):
        noise = torch.randn(mis.numel(), generator=gen, dtype=mis.dtype)
        theta = mis + 1e-3 * noise
        found, _ = get_ridges(problem.loss, theta, settings, hessian_fn=hess)
        starts += [theta] * len(found)
        ridges += found
    thetas = torch.stack(starts)
    dirs = torch.stack([r.direction for r in ridges])
    lams = [r.eigenvalue for r in ridges]
    vec = can_vectorize(problem.loss, mis, hess)

    def looped():  # type: ignore[no-untyped-def]
        return [
            ride(problem.loss, t, r.direction, r.eigenvalue, settings, args.steps, hess)
            for t, r in zip(starts, ridges, strict=True)
        ]

    def batched():  # type: ignore[no-untyped-def]
        return ride_batched(
            problem.loss, thetas, dirs, lams, settings, args.steps, hess, vectorize=vec
        )

    t_loop, ref = best_of(args.repeats, looped)
    t_batch, out = best_of(args.repeats, batched)
    assert ref is not None and out is not None
    same = all(
        a.steps == b.steps and a.end_reason == b.end_reason for a, b in zip(ref, out, strict=True)
    )
    steps = sum(o.steps for o in ref)
    return (
        f"| {name} {params} | {problem.n_params} | {len(ridges)} | {steps} "
        f"| {steps / t_loop:.0f} | {steps / t_batch:.0f} | {t_loop / t_batch:.2f}× "
        f"{'' if same else '(rides differ!)'}|"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--replicates", type=int, default=4)
    p.add_argument("--autograd", action="store_true", help="autograd Hessians, not closed forms")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print("| problem | n | branches | steps | looped steps/s | batched steps/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, params in CASES:
        print(one_case(name, params, args), flush=True)
    hessians = "autograd (torch.func)" if args.autograd else "closed-form"
    print(f"torch threads {args.threads}, {hessians} Hessians, best of {args.repeats}")


if __name__ == "__main__":
    main()
