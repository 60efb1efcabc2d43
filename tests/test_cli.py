import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.cli.report import progress_bar
from ridgerider.cli.request import problem_and_settings


@pytest.fixture
def runner():
    return CliRunner()


def test_run_writes_the_report(runner, tmp_path):
    out = tmp_path / "toy.json"
    result = runner.invoke(main, ["run", "toy2d", "--seed", "3", "--json", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {
        "problem",
        "params",
        "seed",
        "method",
        "order",
        "mis",
        "nodes",
        "solutions",
        "elapsed_s",
        "coverage",
    } <= set(report)
    assert report["problem"] == "toy2d" and report["seed"] == 3
    assert report["method"] == "exact" and report["order"] == "bfs"
    assert set(report["mis"]) == {"loss", "grad_norm", "negative_eigenvalues", "spectrum"}
    assert report["mis"]["negative_eigenvalues"] == 2
    spectrum = report["mis"]["spectrum"]  # toy2d has two parameters: its whole spectrum
    assert len(spectrum) == 2 and spectrum == sorted(spectrum) and spectrum[1] < 0
    assert report["coverage"] == {"found": 4, "total": 4}
    fingerprints = sorted(tuple(map(tuple, s["fingerprint"])) for s in report["solutions"])
    assert fingerprints == [((0, -1),), ((0, 1),), ((1, -1),), ((1, 1),)]
    assert all({"fingerprint", "loss", "metrics"} <= set(s) for s in report["solutions"])


def test_run_prints_a_table_and_progress(runner):
    result = runner.invoke(main, ["run", "toy2d"])
    assert result.exit_code == 0, result.output
    assert "4 solutions" in result.output
    assert "stored in" in result.output
    assert "targets found 4/4" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "nope"], "unknown problem 'nope'"),
        (["run", "tree-rl", "--set", "depth=x"], "'depth'"),
        (["run", "tree-rl", "--set", "depth=99"], "'depth'"),
        (["run", "tree-rl", "--set", "color=red"], "'color'"),
        (["run", "tree-rl", "--set", "depth"], "KEY=VALUE"),
        (["run", "lever-game", "--set", "payoffs=1,x"], "'payoffs'"),
        (["run", "lever-game", "--setting", "alpha=-1"], "alpha"),
        (["run", "lever-game", "--setting", "alpha=abc"], "'alpha'"),
        (["run", "lever-game", "--setting", "bogus=1"], "'bogus'"),
        (["run", "lever-game", "--setting", "one_per_group=maybe"], "'one_per_group'"),
        (["run", "lever-game", "--order", "sideways"], "--order"),
        (["run", "lever-game", "--max-nodes", "0"], "--max-nodes"),
        (["run", "lever-game", "--seed", "-1"], "--seed"),
        (["run", "lever-game", "--setting", "max_depth=deep"], "'none'"),
        (["run", "lever-game", "--setting", "max_depth=-1"], "max_depth"),
        (["run", "lever-game", "--preset", "paper-fig2"], "is for tree-rl"),
        (["run", "tree-rl", "--preset", "paper-fig9"], "--preset"),
    ],
)
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(runner, tmp_path, args, needle):
    out = tmp_path / "out.json"
    result = runner.invoke(main, [*args, "--json", str(out)])
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert not out.exists()


def test_json_into_a_missing_folder_is_refused_before_work(runner, tmp_path):
    result = runner.invoke(main, ["run", "toy2d", "--json", str(tmp_path / "no" / "x.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_problems_lists_the_registry(runner):
    result = runner.invoke(main, ["problems", "--json"])
    assert result.exit_code == 0
    data = {p["name"]: p for p in json.loads(result.output)}
    assert {"toy2d", "tree-rl", "lever-game"} <= set(data)
    assert "depth" in data["tree-rl"]["params"]["properties"]
    table = runner.invoke(main, ["problems"])
    assert "lever-game" in table.output


def test_jobs_show_resume_extend_round_trip(runner, tmp_path):
    first = tmp_path / "run.json"
    result = runner.invoke(main, ["run", "lever-game", "--max-nodes", "12", "--json", str(first)])
    assert result.exit_code == 0, result.output
    report = json.loads(first.read_text())
    job = report["job_id"]
    assert f"job {job} stored in" in result.output

    listed = runner.invoke(main, ["jobs", "--json"])
    rows = json.loads(listed.output)
    assert [r["job_id"] for r in rows] == [job]
    assert rows[0]["problem"] == "lever-game" and rows[0]["nodes"] == 12

    shown = tmp_path / "show.json"
    assert runner.invoke(main, ["show", str(job), "--json", str(shown), "--quiet"]).exit_code == 0
    again = json.loads(shown.read_text())
    assert again["solutions"] == report["solutions"]
    assert again["nodes"] == report["nodes"]

    # resume of a finished job changes nothing; extend grows it to the new budget
    resumed = runner.invoke(main, ["resume", str(job), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    grown = tmp_path / "grown.json"
    ext = runner.invoke(main, ["extend", str(job), "--max-nodes", "30", "--json", str(grown)])
    assert ext.exit_code == 0, ext.output
    assert json.loads(grown.read_text())["nodes"] == 30


@pytest.mark.parametrize("command", ["show", "resume"])
def test_unknown_job_exits_2(runner, command):
    result = runner.invoke(main, [command, "999"])
    assert result.exit_code == 2
    assert "999" in result.output


def test_the_bar_counts_the_steps_of_rides_in_flight():
    """A long ride moves the bar's step count while it runs; a finished node replaces it."""
    progress, on_node, on_riding = progress_bar(True, "job 1", 10)
    (task,) = progress.tasks
    on_riding(250)
    assert task.fields["steps"] == 250 and task.completed == 0
    on_node(SimpleNamespace(is_solution=False, key=""), 400)  # the ride ended after 400 steps
    on_riding(0)
    assert task.fields["steps"] == 400 and task.completed == 1
    on_riding(30)  # the next ride
    assert task.fields["steps"] == 430 and task.fields["solutions"] == 0


def test_presets_hold_the_paper_settings_and_options_override_them():
    prob, rr = problem_and_settings("tree-rl", (), (), {}, "paper-fig2")
    assert prob.params.generator == "paper" and prob.params.depth == 6
    assert (rr.method, rr.order, rr.n_ridges, rr.signs) == ("exact", "bfs", 6, "both")
    assert (rr.overlap_threshold, rr.end_on_convex, rr.step_rule) == (0.95, False, "backtrack")
    assert (rr.max_steps, rr.max_depth, rr.polish_steps) == (100_000, None, 0)
    assert rr.alpha == prob.default_settings()["alpha"]  # not stated: the problem's default
    prob, rr = problem_and_settings("tree-rl", (), (), {}, "paper-fig3")
    assert prob.params.depth == 12 and rr.max_depth is None and rr.max_steps == 100_000
    prob, rr = problem_and_settings(
        "tree-rl", ("depth=8",), ("max_depth=5", "signs=descent"), {"max_steps": 10}, "paper-fig3"
    )
    assert (prob.params.depth, prob.params.generator) == (8, "paper")
    assert (rr.max_depth, rr.signs, rr.max_steps) == (5, "descent", 10)
    _, rr = problem_and_settings("tree-rl", (), ("max_depth=none",), {})
    assert rr.max_depth is None and rr.signs == "descent"  # no preset: tree-rl's defaults
    prob, rr = problem_and_settings("lever-game", (), (), {}, "paper-fig6")
    assert list(prob.payoff_values()) == [1.0] * 7 + [0.8, 0.8, 0.6] and rr.n_ridges == 10


def test_the_paper_mnist_preset_resolves_and_rides(tmp_path):
    prob, rr = problem_and_settings("digits-mlp", (), (), {}, "paper-mnist")
    assert prob.params.image_size == 28 and prob.n_params == 118_282  # 784-128-128-10
    assert (rr.method, rr.approx_update, rr.approx_steps, rr.step_rule) == (
        "approx",
        "paper",
        1,
        "fixed",
    )
    assert (rr.alpha, rr.approx_lr_e, rr.hvp_batch, rr.n_ridges) == (0.00264, 0.00051, 2236, 1)
    # A couple of steps on a small network (the preset's own takes minutes a ride).
    url = f"sqlite:///{tmp_path / 'a.db'}"
    out = tmp_path / "run.json"
    args = ["run", "digits-mlp", "--preset", "paper-mnist", "--set", "hidden=8,8"]
    args += ["--setting", "max_ride_steps=2", "--quiet", "--json", str(out)]
    result = CliRunner().invoke(main, [*args, "--database-url", url])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["nodes"] == 2 and len(report["solutions"]) == 1  # the root and one ride
