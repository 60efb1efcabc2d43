"""Ridge Rider on gymnasium environments: exact and DiCE curvature against policy gradient.

For FrozenLake 4x4 (slippery), FrozenLake 8x8 (not slippery) and CliffWalking (``gym-tabular``)
and CartPole-v1 (``gym-policy``), with the same settings for every method of a row:

* ``exact RR``: Ridge Rider on the exact J (no samples);
* ``DiCE RR``: the same tree with ``curvature="dice"`` (samples counted);
* ``PG random`` / ``PG MIS``: policy gradient (Adam on DiCE first-order gradients, fresh episodes
  every step) from random initialisations / from perturbations of the MIS, run after run until
  the DiCE tree's sample budget is spent.

Reported per method: distinct greedy paths that reach the goal (``gym-tabular``; CartPole: the
distinct greedy-return buckets), the best and mean exact success rate over the method's final
policies, and the episodes sampled. Writes ``gym_dice.json`` to ``--out``.

    nice -n 10 python benchmarks/gym_dice.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from ridgerider.core import RRSettings, find_mis, run_search
from ridgerider.core.curvature import gradient, value_and_gradient
from ridgerider.problems import create

ENVS: dict[str, dict[str, Any]] = {
    "FrozenLake 4x4 slippery": {"env_id": "FrozenLake-v1"},
    "FrozenLake 8x8": {
        "env_id": "FrozenLake-v1",
        "env_kwargs": {"map_name": "8x8", "is_slippery": False},
    },
    "CliffWalking": {"env_id": "CliffWalking-v1", "gamma": 0.9},
}
POLISH_LR = {"CliffWalking": 0.3}
"""Leaf polish learning rate where ``--polish-lr`` is too large (CliffWalking's J is ~100×)."""


def summarise(problem: Any, thetas: list[torch.Tensor]) -> dict[str, Any]:
    """Distinct goal-reaching greedy paths and success rates of final policies."""
    keys = {problem.solution_key(t) for t in thetas}
    rates = [problem.success_rate(t) for t in thetas] or [0.0]
    return {
        "policies": len(thetas),
        "distinct_goal_paths": len({k for k in keys if k.endswith("!")}),
        "distinct_paths": len(keys),
        "best_success": max(rates),
        "mean_success": sum(rates) / len(rates),
    }


def rr(params: dict[str, Any], settings: RRSettings, seed: int) -> dict[str, Any]:
    """A Ridge Rider tree; its solutions' summary and the episodes it sampled."""
    problem = create("gym-tabular", params)
    start = time.perf_counter()
    result = run_search(problem, settings, seed=seed)
    out = summarise(problem, [n.theta for n in result.solutions])
    out.update(
        samples=problem.counter.episodes,
        nodes=len(result.nodes),
        steps=result.steps,
        seconds=round(time.perf_counter() - start, 1),
    )
    return out


def policy_gradient(
    params: dict[str, Any], budget: int, start: str, steps: int, lr: float, seed: int
) -> tuple[Any, list[torch.Tensor], int]:
    """Adam on DiCE gradients, fresh episodes every step, run after run until ``budget``."""
    problem = create(params.pop("problem", "gym-tabular"), params)
    mis = find_mis(problem).theta if start == "mis" else None
    gen = torch.Generator().manual_seed(seed)
    finals: list[torch.Tensor] = []
    run = 0
    while problem.counter.episodes + steps * problem.params.samples <= max(budget, 1):
        if mis is None:
            theta = problem.random_init(gen)
        else:
            theta = mis + 0.1 * torch.randn(mis.numel(), generator=gen, dtype=mis.dtype)
        theta = theta.clone().requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=lr)
        for step in range(steps):
            sampled = problem.at_node(f"pg-{start}-{seed}-{run}-{step}")
            _, grad = value_and_gradient(sampled.loss, theta.detach())
            opt.zero_grad()
            theta.grad = grad
            opt.step()
        finals.append(theta.detach().clone())
        run += 1
    return problem, finals, problem.counter.episodes


def tabular_row(name: str, params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Exact RR, DiCE RR and both PG baselines on one environment."""
    settings = RRSettings(
        n_ridges=args.n_ridges,
        alpha=1.0,
        max_depth=args.max_depth,
        signs="descent",
        max_nodes=args.max_nodes,
        max_ride_steps=args.ride_steps,
        overlap_threshold=args.overlap,
        polish_steps=args.polish_steps,
        polish_lr=POLISH_LR.get(name, args.polish_lr),
    )
    row: dict[str, Any] = {"env": name, "params": params}
    row["exact RR"] = rr({**params, "curvature": "exact"}, settings, args.seed)
    dice = {**params, "curvature": "dice", "samples": args.samples}
    row["DiCE RR"] = rr(dice, settings, args.seed)
    budget = row["DiCE RR"]["samples"]
    for start in ("random", "mis"):
        t0 = time.perf_counter()
        problem, finals, used = policy_gradient(
            dict(dice), budget, start, args.pg_steps, args.pg_lr, args.seed
        )
        row[f"PG {start}"] = {
            **summarise(problem, finals),
            "samples": used,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    return row


def cartpole_row(args: argparse.Namespace) -> dict[str, Any]:
    """Sampled RR on CartPole-v1 (linear policy) against PG from random starts."""
    params = {"env_id": "CartPole-v1", "samples": args.cartpole_samples}
    problem = create("gym-policy", params)
    settings = RRSettings(
        **{
            **problem.default_settings(),
            "max_nodes": args.max_nodes,
            "polish_steps": 20,
            "polish_lr": 0.01,
            "end_on_convex": False,
            "max_ride_steps": args.ride_steps,
        }
    )
    t0 = time.perf_counter()
    result = run_search(problem, settings, seed=args.seed)
    greedy = [n.metrics["greedy_return"] for n in result.solutions] or [0.0]
    row: dict[str, Any] = {"env": "CartPole-v1"}
    row["DiCE RR"] = {
        "solutions": len(result.solutions),
        "distinct_return_buckets": len({n.solution_key for n in result.solutions}),
        "best_greedy_return": max(greedy),
        "mean_greedy_return": sum(greedy) / len(greedy),
        "samples": problem.counter.episodes,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    t0 = time.perf_counter()
    pg, finals, used = policy_gradient(
        {**params, "problem": "gym-policy"},
        problem.counter.episodes,
        "random",
        args.pg_steps,
        0.05,
        args.seed,
    )
    returns = [pg.greedy_return(t) for t in finals] or [0.0]
    row["PG random"] = {
        "solutions": len(finals),
        "distinct_return_buckets": len({pg.solution_key(t) for t in finals}),
        "best_greedy_return": max(returns),
        "mean_greedy_return": sum(returns) / len(returns),
        "samples": used,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return row


def convergence(sizes: list[int]) -> list[dict[str, float]]:
    """Relative errors of DiCE gradients and HVPs against the exact ones (FrozenLake 4x4).

    The point and vector of ``tests/problems/test_gym.py``, which checks N up to 10^4.
    """
    problem = create("gym-tabular", {"env_id": "FrozenLake-v1", "curvature": "dice"})
    gen = torch.Generator().manual_seed(0)
    theta = 0.5 * torch.randn(problem.n_params, generator=gen, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(problem.n_params, generator=gen, dtype=torch.float64)
    g_exact = gradient(problem.loss, theta)
    hv_exact = problem.hessian(theta) @ v
    out = []
    for n in sizes:
        sampled = problem.with_sampling(f"n{n}", samples=n)
        x = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(sampled.loss(x), x, create_graph=True)
        (hv,) = torch.autograd.grad(g, x, v)
        out.append(
            {
                "N": n,
                "grad_rel_error": float((g.detach() - g_exact).norm() / g_exact.norm()),
                "hvp_rel_error": float((hv - hv_exact).norm() / hv_exact.norm()),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--envs", nargs="*", default=list(ENVS))
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--max-nodes", type=int, default=30)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--n-ridges", type=int, default=4)
    parser.add_argument("--ride-steps", type=int, default=5)
    parser.add_argument("--overlap", type=float, default=0.8)
    parser.add_argument("--polish-steps", type=int, default=30)
    parser.add_argument("--polish-lr", type=float, default=30.0)
    parser.add_argument("--pg-steps", type=int, default=30)
    parser.add_argument("--pg-lr", type=float, default=0.1)
    parser.add_argument("--cartpole-samples", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10_000, 100_000])
    parser.add_argument("--no-cartpole", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    conv = convergence(args.sizes)
    print(json.dumps({"convergence": conv}), flush=True)
    rows = []
    for name in args.envs:
        rows.append(tabular_row(name, ENVS[name], args))
        print(json.dumps(rows[-1]), flush=True)
    if not args.no_cartpole:
        rows.append(cartpole_row(args))
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gym_dice.json").write_text(
        json.dumps(
            {"args": vars(args) | {"out": str(args.out)}, "convergence": conv, "rows": rows},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
