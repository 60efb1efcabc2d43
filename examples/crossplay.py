"""Zero-shot coordination by cross-play (the paper's §4 and Fig. 6) from Python.

Runs ``R`` independent Ridge Rider replicates of the lever game (each from a perturbed MIS with
its repeated eigenvectors redrawn, so the replicates agree only on what the game's symmetries
cannot change), scores every fingerprint by how well its agents play with the other replicates'
agents of the same fingerprint, and deploys the best. On the default payoffs (seven levers
paying 1.0, two paying 0.8, one paying 0.6) the chosen fingerprint plays the unique 0.6 lever:
the only lever two strangers can agree on, where self-play agents, each picking one of the
seven 1.0 levers, meet by chance.

    python examples/crossplay.py --replicates 8 --plot fig6.png   # --plot needs matplotlib
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ridgerider.services.crossplay import run_crossplay


def main(replicates: int, plot: Path | None) -> dict:
    """Run the scheme, print its table and choice, and optionally draw Fig. 6 into ``plot``."""
    report = run_crossplay("lever-game", None, replicates, seed=0).to_dict()
    print(f"{replicates} replicates, {len(report['fingerprints'])} fingerprints scored")
    print(f"{'fingerprint':12} {'cross-play':>10} {'± std':>6} {'self-play':>9}  levers")
    for row in sorted(report["fingerprints"], key=lambda r: -r["xp"]):
        levers = ",".join(sorted(set(row["solution_keys"])))
        scores = f"{row['xp']:10.3f} {row['xp_std']:6.3f} {row['sp']:9.3f}"
        print(f"{row['fingerprint']:12} {scores}  {levers}")
    chosen = report["chosen"]
    self_play = report["baselines"]["self_play"]
    print(
        f"chosen {chosen['fingerprint']}: cross-play {chosen['xp']:.3f} "
        f"(self-play agents together: {self_play['xp']:.3f})"
    )
    if plot is not None:
        from ridgerider.cli.crossplay import plot_crossplay  # the figure of `crossplay --plot`

        plot_crossplay(report, plot)
        print(f"wrote {plot}")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8, help="independent RR runs (>= 2)")
    parser.add_argument("--plot", type=Path, default=None, help="write Fig. 6 to this PNG")
    args = parser.parse_args()
    main(args.replicates, args.plot)
