"""``ridgerider crossplay``: the zero-shot coordination scheme on a two-player game (paper Fig. 6).

Replicates run in this process (``--workers 0``, the default) or in N local processes; the
report is the same either way. ``--replicates`` defaults to :data:`DEFAULT_REPLICATES`;
``--preset paper-fig6`` takes the paper's 25 (an explicit ``--replicates`` overrides it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ridgerider.cli.choices import CROSSPLAY_PRESETS
from ridgerider.cli.common import (
    QUIET,
    check_json_path,
    console,
    out,
    parse_pairs,
    usage_error,
)
from ridgerider.cli.report import write_json
from ridgerider.schemas.crossplay import MAX_REPLICATES

__all__ = ["DEFAULT_REPLICATES", "crossplay", "plot_crossplay"]

DEFAULT_REPLICATES = 25
"""Replicates when none are given, the paper's 25: measured with ``benchmarks/crossplay_lever.py``
(``benchmarks/README.md``, Fig. 6), 8 replicates deployed a 0.8 lever on 3 of 30 held-out
master seeds of the paper's game, and 25 chose the unique lever in every run measured."""


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "--plot needs matplotlib: pip install 'ridgerider[plot]'"
        ) from None


def plot_crossplay(report: dict[str, Any], path: Path) -> None:
    """Write the paper's Fig. 6 for a cross-play report.

    Left: cross-play per fingerprint (mean over replicate pairs, error bars one standard
    deviation), self-play as markers and the self-play population's cross-play as a line.
    Right: the fingerprint-by-fingerprint cross-play matrix as a heatmap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["fingerprints"]
    labels = [r["fingerprint"] for r in rows]
    xs = range(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=[1.3, 1])
    chosen = report["chosen"]["fingerprint"]
    colors = ["tab:green" if lab == chosen else "tab:blue" for lab in labels]
    left.bar(
        xs,
        [r["xp"] for r in rows],
        yerr=[r["xp_std"] for r in rows],
        color=colors,
        capsize=3,
        label="cross-play (RR replicates)",
    )
    left.scatter(
        xs, [r["sp"] for r in rows], color="black", marker="_", s=120, zorder=3, label="self-play"
    )
    base = report["baselines"]["self_play"]["xp"]
    left.axhline(
        base, color="tab:red", linestyle="--", label=f"self-play agents' cross-play ({base:.2f})"
    )
    left.set_xticks(list(xs), labels, rotation=60, fontsize=8)
    left.set_xlabel("fingerprint (eigen-index, sign)")
    left.set_ylabel("average payoff")
    left.set_ylim(0, 1.4 * max(1.0, max(r["sp"] for r in rows)))  # room for the legend
    left.set_title(f"{report['problem']}: {report['replicates']} replicates, chosen {chosen}")
    left.legend(fontsize=8, loc="upper right", ncols=2)
    values = report["matrix"]["values"]
    im = right.imshow(values, cmap="viridis", vmin=0)
    right.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    right.set_yticks(range(len(labels)), labels, fontsize=7)
    right.set_xlabel("player 2's fingerprint")
    right.set_ylabel("player 1's fingerprint")
    right.set_title("cross-play between fingerprints")
    fig.colorbar(im, ax=right, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(report: dict[str, Any]) -> Table:
    sym = any("xp_sym" in r for r in report["fingerprints"])
    table = Table(title=f"{report['problem']}: cross-play of {report['replicates']} replicates")
    for col in ("fingerprint", "λ", "XP", "±", "SP", *(["XP (sym.)"] if sym else []), "solutions"):
        table.add_column(col, justify="left" if col in ("fingerprint", "solutions") else "right")
    for r in report["fingerprints"]:
        keys = r["solution_keys"]
        shown = ", ".join(sorted({str(k) for k in keys}))
        cells = [
            r["fingerprint"],
            f"{r['eigenvalue']:.4g}",
            f"{r['xp']:.3f}",
            f"{r['xp_std']:.3f}",
            f"{r['sp']:.3f}",
        ]
        if sym:
            cells.append(f"{r['xp_sym']:.3f}" if "xp_sym" in r else "")
        table.add_row(*cells, shown if len(shown) <= 40 else shown[:37] + "...")
    return table


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.3f}"


@click.command()
@click.argument("problem")
@click.option("--set", "params", multiple=True, metavar="KEY=VALUE", help="problem parameter")
@click.option(
    "--replicates",
    type=click.IntRange(2, MAX_REPLICATES),
    default=None,
    help=f"independent RR runs (default {DEFAULT_REPLICATES}, the paper's)",
)
@click.option(
    "--preset",
    type=click.Choice(CROSSPLAY_PRESETS),
    default=None,
    help="the paper's Fig. 6 settings (options given override them)",
)
@click.option(
    "--fingerprints",
    type=click.IntRange(1, 4096),
    default=None,
    help="top F eigen-indices at the MIS, both signs (default: the problem's n_ridges)",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="0: replicates in this process; N: in N local processes",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="write a report"
)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="write Fig. 6"
)
@QUIET
def crossplay(
    problem: str,
    params: tuple[str, ...],
    replicates: int | None,
    preset: str | None,
    fingerprints: int | None,
    seed: int,
    workers: int,
    json_path: Path | None,
    plot_path: Path | None,
    quiet: bool,
) -> None:
    """Run R independent RR replicates of a two-player PROBLEM and deploy the best fingerprint.

    Each fingerprint (eigen-index and sign at the MIS) is scored by its cross-play: the mean
    return of player 1 from one replicate with player 2 from another.
    """
    from ridgerider.core.threads import use_compute_threads
    from ridgerider.problems.presets import get_preset
    from ridgerider.services.crossplay import CrossplayInputError, run_crossplay

    raw = parse_pairs(params, "--set")
    settings: dict[str, Any] = {}
    if preset is not None:
        try:
            chosen = get_preset(preset, problem)
        except ValueError as exc:
            usage_error(f"--preset: {exc}")
        raw, settings = {**chosen.params, **raw}, dict(chosen.settings)
        replicates = chosen.extra["replicates"] if replicates is None else replicates
    replicates = DEFAULT_REPLICATES if replicates is None else replicates
    check_json_path(json_path)
    if plot_path is not None:
        if not plot_path.parent.exists():
            usage_error(f"--plot: folder {str(plot_path.parent)!r} does not exist")
        _require_matplotlib()
    use_compute_threads()

    def progress(done: int, total: int) -> None:
        if not quiet:
            console.print(f"replicate {done}/{total}")

    try:
        result = run_crossplay(
            problem,
            raw,
            replicates,
            fingerprints,
            seed,
            settings=settings,
            workers=workers,
            on_replicate=progress,
        )
    except CrossplayInputError as exc:
        usage_error(str(exc))
    report = result.to_dict()
    if not quiet:
        out.print(_table(report))
        ch, sp, rr_sp = (
            report["chosen"],
            report["baselines"]["self_play"],
            report["baselines"]["rr_self_play"],
        )
        out.print(
            f"chosen: {ch['fingerprint']} XP {_fmt(ch['xp'])} (SP {_fmt(ch['sp'])}, "
            f"levers {json.dumps(ch['metrics'].get('levers'))})"
        )
        out.print(
            f"baselines: self-play agents XP {_fmt(sp['xp'])} (SP {_fmt(sp['sp'])}); "
            f"RR's self-play choice {rr_sp['fingerprint']} XP {_fmt(rr_sp['xp'])}"
        )
        out.print(f"{report['elapsed_s']:.3g} s, workers {workers}")
    write_json(report, json_path, quiet)
    if plot_path is not None:
        plot_crossplay(report, plot_path)
        if not quiet:
            out.print(f"wrote {plot_path}")
