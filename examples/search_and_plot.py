"""A Ridge Rider search from Python, and its plots.

Runs exact Ridge Rider on the paper's Fig. 1 surface (``toy2d``: a maximum, two local and two
global minima), prints the tree, and draws (1) every ride over the loss surface and (2) the loss
along each root-to-leaf path. Nothing is stored: this is the engine alone
(``ridgerider.core``), as a notebook or a research script would use it.

    python examples/search_and_plot.py --out plots/   # needs matplotlib: pip install -e '.[plot]'
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create


def main(out: Path) -> None:
    """Search toy2d, print the tree and write ``surface.png`` and ``losses.png`` into ``out``."""
    problem = create("toy2d", {})
    settings = RRSettings(**problem.default_settings())
    result = run_search(problem, settings, seed=0)
    print(f"MIS at {result.mis.theta.tolist()}, {len(result.nodes)} nodes, {result.steps} steps")
    for node in result.nodes:
        kind = "solution" if node.is_solution else ("leaf" if node.is_leaf else "branch")
        where = ", ".join(f"{v:+.3f}" for v in node.theta.tolist())
        print(f"  {node.key or '(root)':8} {kind:8} loss {node.loss:+.4f} at ({where})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    by_key = {node.key: node for node in result.nodes}
    pts = torch.stack([n.theta for n in result.nodes])
    lo, hi = float(pts.min()) - 0.5, float(pts.max()) + 0.5
    grid = torch.linspace(lo, hi, 120, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    zz = torch.vmap(problem.loss)(torch.stack([xx.flatten(), yy.flatten()], dim=1))
    zz = zz.clamp(max=float(zz.quantile(0.6)))  # the basins, not the steep rim, get the colours
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contourf(xx, yy, zz.reshape(xx.shape), levels=30, cmap="viridis")
    for node in result.nodes:
        if node.depth == 0:
            continue
        parent = by_key[node.key.rpartition(".")[0]]
        (x0, y0), (x1, y1) = parent.theta.tolist(), node.theta.tolist()
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "color": "white"})
        ax.text(x1, y1, f" {node.key}", color="white", fontsize=8)
    mis = result.mis.theta.tolist()
    ax.plot(*mis, "r*", markersize=12, label="MIS")
    ax.legend(loc="upper right")
    ax.set_title("Ridge Rider on the Fig. 1 surface: one ride per arrow")
    fig.savefig(out / "surface.png", dpi=100)

    fig, ax = plt.subplots(figsize=(6, 4))
    for leaf in (n for n in result.nodes if n.is_leaf):
        chain, key = [], leaf.key
        while True:
            chain.insert(0, by_key[key])
            if not key:
                break
            key = key.rpartition(".")[0]
        losses = [v for n in chain for v in n.losses]
        ax.plot(losses, label=leaf.key)
    ax.set_xlabel("ride step (all rides from the MIS)")
    ax.set_ylabel("loss")
    ax.legend()
    fig.savefig(out / "losses.png", dpi=100)
    print(f"wrote {out / 'surface.png'} and {out / 'losses.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("plots"), help="folder for the PNGs")
    main(parser.parse_args().out)
