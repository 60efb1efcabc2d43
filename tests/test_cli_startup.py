"""The command line starts light (``--help`` and completion import no engine); its options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.cli.choices import CROSSPLAY_PRESETS, ORDERS, PRESETS
from ridgerider.cli.main import COMMANDS
from ridgerider.cli.report import print_report

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = (
    "torch",
    "ray",
    "fastapi",
    "sqlalchemy",
    "uvicorn",
    "ridgerider.core",
    "ridgerider.problems",
    "ridgerider.services",
    "ridgerider.workers",
    "ridgerider.api",
)
# Runs the command line as the `ridgerider` script does, then reports what it had imported.
HARNESS = f"""
import json, sys
from ridgerider.cli import main
try:
    main(sys.argv[1:], prog_name="ridgerider")
finally:
    sys.stderr.write("LOADED=" + json.dumps([m for m in {HEAVY!r} if m in sys.modules]) + "\\n")
"""


def _cli(*args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run ``ridgerider ARGS`` in a fresh interpreter: the result and the heavy modules loaded."""
    environ = {**os.environ, "PYTHONPATH": str(SRC), **env}
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    marker = [line for line in proc.stderr.splitlines() if line.startswith("LOADED=")]
    assert marker, proc.stderr
    return proc, json.loads(marker[-1].removeprefix("LOADED="))


def test_help_lists_every_command_and_imports_no_engine() -> None:
    proc, loaded = _cli("--help")
    assert proc.returncode == 0, proc.stderr
    for name in COMMANDS:
        assert f"  {name} " in proc.stdout
    assert "Run a Ridge Rider search on PROBLEM" in proc.stdout
    assert loaded == []


def test_a_command_help_imports_no_engine() -> None:
    proc, loaded = _cli("run", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--max-nodes" in proc.stdout and "paper-fig2" in proc.stdout
    assert loaded == []


def test_completing_a_command_name_imports_no_engine() -> None:
    """Click's bash protocol: ``_RIDGERIDER_COMPLETE=bash_complete`` with COMP_WORDS/CWORD."""
    proc, loaded = _cli(
        _RIDGERIDER_COMPLETE="bash_complete", COMP_WORDS="ridgerider ru", COMP_CWORD="1"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["plain,run"]
    assert loaded == []


def test_listing_jobs_reads_the_archive_without_the_engine(tmp_path: Path) -> None:
    """``ridgerider jobs`` opens the storage alone: no torch, frontier, problems or workers."""
    from ridgerider.core.settings import RRSettings
    from ridgerider.services.jobs import Submission
    from ridgerider.workers import runner

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    stored = runner.run(
        Submission.build("toy2d", {}, RRSettings(max_nodes=3), name="listed"), database_url=url
    )
    proc, loaded = _cli("jobs", "--json", "--database-url", url)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["job_id"] == stored["job_id"] and row["name"] == "listed"
    assert row["nodes"] == stored["nodes"] == 3
    assert row["solutions"] == len(stored["solutions"])
    assert loaded == ["sqlalchemy", "ridgerider.services"], loaded
    proc, loaded = _cli("jobs", "--database-url", "foo://x")  # its errors are still the CLI's
    assert proc.returncode == 2 and "--database-url foo://x" in proc.stderr, proc.stderr


def test_control_the_check_sees_torch_when_a_command_loads_it() -> None:
    """``version`` imports torch on purpose: the harness above would have reported it."""
    proc, loaded = _cli("version")
    assert proc.returncode == 0, proc.stderr
    assert "ridgerider " in proc.stdout and "Python " in proc.stdout
    assert "torch" in loaded


def test_the_static_table_matches_each_command() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == list(COMMANDS)
    for name, (_, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.help is not None
        assert command.help.splitlines()[0] == short, name
    assert main.get_command(ctx, "nope") is None


def test_the_static_choices_match_the_engine() -> None:
    from ridgerider.core.settings import ORDERS as ENGINE_ORDERS
    from ridgerider.problems.presets import PRESETS as ENGINE_PRESETS

    assert ORDERS == ENGINE_ORDERS
    assert list(PRESETS) == sorted(ENGINE_PRESETS)
    with_replicates = sorted(n for n, p in ENGINE_PRESETS.items() if "replicates" in p.extra)
    assert list(CROSSPLAY_PRESETS) == with_replicates


def test_version_without_torch() -> None:
    result = CliRunner().invoke(main, ["version", "--no-torch"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ridgerider 0.") and lines[1].startswith("Python 3.")
    assert lines[2].startswith("torch ") and "CUDA" not in lines[2] and "CPU" not in lines[2]


def test_group_quiet_silences_the_command_and_a_bad_option_exits_2() -> None:
    runner = CliRunner()
    loud = runner.invoke(main, ["run", "toy2d", "--max-nodes", "2"])
    quiet = runner.invoke(main, ["--quiet", "run", "toy2d", "--max-nodes", "2"])
    assert loud.exit_code == quiet.exit_code == 0, loud.output + quiet.output
    assert "solutions" in loud.output and "solutions" not in quiet.output
    bad = runner.invoke(main, ["--verbose=3", "version"])
    assert bad.exit_code == 2 and "--verbose" in bad.output


@pytest.mark.parametrize(("args", "level"), [((), None), (("-v",), "INFO"), (("-vv",), "DEBUG")])
def test_verbose_logs_on_stderr(args: tuple[str, ...], level: str | None) -> None:
    code = (
        "import logging\nfrom ridgerider.cli import main\n"
        f"main([*{args!r}, 'version', '--no-torch'], standalone_mode=False)\n"
        "logging.getLogger('ridgerider.x').info('seen at info')\n"
        "logging.getLogger('ridgerider.x').debug('seen at debug')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert ("INFO ridgerider.x: seen at info" in proc.stderr) == (level is not None)
    assert ("DEBUG ridgerider.x: seen at debug" in proc.stderr) == (level == "DEBUG")
    assert "seen" not in proc.stdout


def _report(stopped_by: str, solutions: int) -> dict:
    sol = {"fingerprint": [[0, 1]], "loss": 0.5, "metrics": {}}
    return {
        "job_id": 7,
        "problem": "lever-game",
        "params": {},
        "seed": 0,
        "method": "exact",
        "order": "bfs",
        "mis": {"loss": 1.0, "grad_norm": 0.0, "negative_eigenvalues": 3},
        "solutions": [sol] * solutions,
        "nodes": 40,
        "steps": 100,
        "elapsed_s": 1.0,
        "status": "succeeded",
        "stopped_by": stopped_by,
    }


@pytest.mark.parametrize(
    ("stopped_by", "reason"),
    [
        ("max_nodes", "node budget"),
        ("max_steps", "step budget"),
        ("wall_time", "wall-time budget"),
        ("exhausted", "every branch was explored"),
    ],
)
def test_the_summary_says_why_the_search_stopped(stopped_by: str, reason: str) -> None:
    from ridgerider.cli.report import out

    with out.capture() as captured:
        print_report(_report(stopped_by, 3))
    assert reason in captured.get().splitlines()[-1]


def test_the_table_says_how_to_see_the_solutions_it_leaves_out(tmp_path: Path) -> None:
    from ridgerider.cli.report import out

    with out.capture() as captured:
        print_report(_report("max_nodes", 35))
    text = captured.get()
    assert "--json output" not in text
    assert "5 more" in text and "ridgerider show 7 --json FILE" in text
    with out.capture() as captured:
        print_report(_report("max_nodes", 35), tmp_path / "r.json")
    assert f"5 more in {tmp_path / 'r.json'}" in captured.get().replace("\n", "")
