"""Golden trees: per job, every node's fingerprint (exactly) and its loss and θ (to a tolerance).

The jobs are small and fixed. ``python tests/golden/trees.py --write`` records them in
``trees.json`` beside this file; ``tests/test_golden.py`` recomputes them and compares. A change
that alters a tree on purpose rewrites the file in the same commit and says why.

The file holds each node's loss, the sum and the norm of its θ, compared to a relative 1e-6
(far below any change of what a job computes, far above a rounding difference), and the
fingerprints, the tree's shape, exactly.

Trees are recorded **per platform** (:func:`platform_key`: CPU architecture and vendor, torch's
CPU kernels, torch's version). One CPU's float kernels against another's do not just round
differently: a ride that ends on a flat valley (tree-rl's logits are free along the softmax's
constant direction, so θ moves at equal loss) or at a near-tie between two eigenvalues ends
elsewhere. Measured: tree-rl, the lever game and the coordination game, recorded on the machine
CI used before 2026-12-06, differ on an AMD EPYC with AVX-512 (a θ sum of -0.67 against -0.014
at equal loss; another ride of the lever game; other keys in the coordination game), and also
with torch's AVX2 kernels or MKL's AVX2 path forced there. So the test compares against this
platform's record; on a platform never recorded it passes if any record matches and otherwise
skips, naming the platform and how to record it (on a commit whose trees are known good).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

GOLDEN = Path(__file__).with_name("trees.json")

JOBS: dict[str, dict[str, Any]] = {
    "toy2d": {"problem": "toy2d", "params": {}, "settings": {}, "seed": 0},
    "tree-rl-6": {
        "problem": "tree-rl",
        "params": {"depth": 6, "tree_seed": 2},
        "settings": {"max_nodes": 120},
        "seed": 1,
    },
    "tree-rl-8": {
        "problem": "tree-rl",
        "params": {"depth": 8, "tree_seed": 7},
        "settings": {"max_nodes": 80, "order": "dfs"},
        "seed": 2,
    },
    "lever-game": {
        "problem": "lever-game",
        "params": {},
        "settings": {"max_nodes": 60},
        "seed": 0,
    },
    "coord-game": {
        "problem": "coord-game",
        "params": {"classes": "1.0x3,0.6x1"},
        "settings": {"max_nodes": 40},
        "seed": 0,
    },
    "digits-mlp-approx": {
        "problem": "digits-mlp",
        "params": {"hidden": "8", "init_seed": 1},
        "settings": {
            "method": "approx",
            "max_nodes": 3,
            "n_ridges": 2,
            "max_ride_steps": 5,
            "max_depth": 1,
            # The MLP defaults this tree was recorded with (before they became a search that
            # trains, mlp.py): pinned, so the tree stays what it checks, backtracking rides.
            "alpha": 0.5,
            "approx_update": "rayleigh_ritz",
            "approx_steps": 20,
            "approx_lr_e": 0.0,
            "step_rule": "backtrack",
            "end_on_convex": True,
            "hvp_batch": 0,
            "signs": "both",
            "polish_steps": 0,
            "polish_lr": 0.1,
        },
        "seed": 0,
    },
}
CROSSPLAY: dict[str, Any] = {"problem": "lever-game", "replicates": 3, "seed": 0}


def _summary(rows: list[tuple[str, torch.Tensor, float]]) -> dict[str, Any]:
    """The fingerprints and, per node, [loss, sum θ, ‖θ‖] rounded to 12 significant digits."""
    values = []
    for _, theta, loss in rows:
        t = theta.detach().to(torch.float64)
        values.append([float(f"{v:.12g}") for v in (float(loss), float(t.sum()), float(t.norm()))])
    return {"nodes": len(rows), "keys": [key for key, _, _ in rows], "values": values}


def tree_hash(name: str) -> dict[str, Any]:
    """Run job ``name`` of :data:`JOBS` with the engine; its node count and summary."""
    from ridgerider.core import RRSettings, run_search
    from ridgerider.problems import create

    job = JOBS[name]
    problem = create(job["problem"], job["params"])
    settings = RRSettings(**{**problem.default_settings(), **job["settings"]})
    result = run_search(problem, settings, seed=job["seed"])
    return _summary([(n.key, n.theta, n.loss) for n in result.nodes])


def _crossplay_runner() -> Callable[..., Any]:
    try:
        from ridgerider.services.crossplay import run_crossplay
    except ImportError:  # pragma: no cover - older layouts
        from ridgerider.services.crossplay_runs import run_crossplay  # type: ignore
    return run_crossplay


def crossplay_hash() -> dict[str, Any]:
    """The cross-play report's fingerprints, their leaves' keys, the choice and the scores."""
    report = _crossplay_runner()(
        CROSSPLAY["problem"], None, CROSSPLAY["replicates"], seed=CROSSPLAY["seed"]
    )
    rows = report.fingerprints
    return {
        "fingerprints": len(rows),
        "keys": [[r["fingerprint"], r["solution_keys"]] for r in rows],
        "chosen": report.chosen["fingerprint"],
        "values": [[float(f"{r[k]:.12g}") for k in ("xp", "sp", "eigenvalue")] for r in rows],
    }


def matches(got: dict[str, Any], want: dict[str, Any], rel: float = 1e-6) -> str | None:
    """Why ``got`` differs from the recorded ``want`` (``None`` when it matches)."""
    for field in want:
        if field != "values" and got[field] != want[field]:
            return f"{field} differ"
    for i, (a, b) in enumerate(zip(got["values"], want["values"], strict=True)):
        for x, y in zip(a, b, strict=True):
            if abs(x - y) > rel * max(1.0, abs(y)):
                return f"row {i} ({got.get('keys', [''] * (i + 1))[i]}): {a} != recorded {b}"
    return None


LEGACY = "not recorded (the machine CI ran on until 2026-12-06)"
"""The platform of the records made before trees were kept per platform."""


def _cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("vendor_id", "CPU implementer")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def platform_key() -> str:
    """What decides the float bits here: e.g. ``x86_64 AuthenticAMD AVX512 torch 2.13.0``."""
    capability = torch.backends.cpu.get_cpu_capability()
    version = torch.__version__.split("+")[0]
    return f"{platform.machine()} {_cpu_vendor()} {capability} torch {version}"


def recorded() -> dict[str, dict[str, Any]]:
    """Every platform's record: ``{platform: {job name: hash}}``."""
    data: dict[str, Any] = json.loads(GOLDEN.read_text())
    return data["platforms"]


def compute() -> dict[str, Any]:
    """Every golden hash."""
    torch.set_num_threads(1)
    out: dict[str, Any] = {name: tree_hash(name) for name in JOBS}
    out["crossplay"] = crossplay_hash()
    return out


if __name__ == "__main__":
    result = compute()
    print(json.dumps(result, indent=2))
    if "--write" in sys.argv:  # this platform's record; the others' stay
        platforms = {**recorded(), platform_key(): result}
        GOLDEN.write_text(json.dumps({"platforms": platforms}, indent=2) + "\n")
        print(f"recorded for {platform_key()}", file=sys.stderr)
