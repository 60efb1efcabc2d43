import json

import pytest
from click.testing import CliRunner

from ridgerider.cli import main


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["crossplay", "lever-game", "--preset", "paper-fig2"], "--preset"),
        (["crossplay", "coord-game", "--preset", "paper-fig6"], "is for lever-game"),
        (["crossplay", "lever-game", "--replicates", "1"], "--replicates"),
        (["crossplay", "lever-game", "--replicates", "3", "--fingerprints", "0"], "--fingerprints"),
        (["crossplay", "lever-game", "--replicates", "3", "--workers", "-1"], "--workers"),
        (["crossplay", "lever-game", "--replicates", "3", "--seed", "-2"], "--seed"),
        (["crossplay", "toy2d", "--replicates", "3"], "not a two-player game"),
        (["crossplay", "nope", "--replicates", "3"], "unknown problem"),
        (
            ["crossplay", "lever-game", "--replicates", "3", "--set", "payoffs=1,x"],
            "params.payoffs",
        ),
        (
            ["crossplay", "coord-game", "--replicates", "3", "--set", "classes=1x3,0.5"],
            "params.classes",
        ),
        (["crossplay", "lever-game", "--replicates", "3", "--set", "oops"], "KEY=VALUE"),
        (
            ["crossplay", "lever-game", "--replicates", "3", "--json", "/no/such/dir/a.json"],
            "--json",
        ),
        (
            ["crossplay", "lever-game", "--replicates", "3", "--plot", "/no/such/dir/a.png"],
            "--plot",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_field(runner, tmp_path, args, needle):
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert needle in result.output


def test_crossplay_writes_json_and_figure(runner, tmp_path):
    pytest.importorskip("matplotlib")
    out, fig = tmp_path / "xp.json", tmp_path / "fig6.png"
    args = [
        "crossplay",
        "coord-game",
        "--set",
        "classes=1x2,0.6x1",
        "--replicates",
        "3",
        "--fingerprints",
        "2",
        "--seed",
        "5",
        "--json",
        str(out),
        "--plot",
        str(fig),
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "chosen:" in result.output and "baselines:" in result.output
    report = json.loads(out.read_text())
    assert {"problem", "params", "replicates", "fingerprints", "chosen", "baselines"} <= set(report)
    assert report["params"]["classes"] == [[1.0, 2], [0.6, 1]]
    assert all(
        {"fingerprint", "xp", "xp_std", "sp", "metrics"} <= set(r) for r in report["fingerprints"]
    )
    assert {"xp", "sp"} <= set(report["baselines"]["self_play"])
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_unique_lever_is_chosen_and_replicates_default(runner, tmp_path, monkeypatch):
    """The paper's payoffs, few replicates (cheap): the unique 0.6 lever is deployed."""
    monkeypatch.setattr("ridgerider.cli.crossplay.DEFAULT_REPLICATES", 3)
    out = tmp_path / "xp.json"
    args = ["crossplay", "lever-game", "--fingerprints", "3", "--seed", "7"]
    result = runner.invoke(main, [*args, "--quiet", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["replicates"] == 3
    assert report["chosen"]["metrics"]["levers"] == [9, 9]
    assert report["chosen"]["xp"] == pytest.approx(0.6, abs=0.01)


def test_plot_without_matplotlib_fails_before_running(runner, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    out = tmp_path / "xp.json"
    args = [
        "crossplay",
        "lever-game",
        "--replicates",
        "3",
        "--json",
        str(out),
        "--plot",
        str(tmp_path / "fig.png"),
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "--plot needs matplotlib" in result.output
    assert not out.exists()  # nothing was run or written
