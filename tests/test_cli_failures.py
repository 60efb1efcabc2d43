"""A failure is reported as a failure: bad URLs, oversized exact problems, Ctrl-C, failed jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.problems.toy2d import Toy2D


def _jobs(url: str) -> list[dict]:
    result = CliRunner().invoke(main, ["jobs", "--json", "--database-url", url])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--database-url", "mysql://u:hunter2@x/y"], "--database-url mysql://u:***@x/y"),
        (
            ["--database-url", "postgresql+psycopg://u:hunter2@127.0.0.1:1/db"],
            "--database-url postgresql+psycopg://u:***@127.0.0.1:1/db",
        ),
        (
            ["--redis-url", "redis://:hunter2@127.0.0.1:1/9"],
            "--redis-url redis://:***@127.0.0.1:1/9",
        ),
    ],
)
def test_an_unusable_url_exits_2_naming_it_with_the_password_masked(
    tmp_path: Path, args: list[str], shown: str
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    base = ["run", "toy2d", "--quiet"] + (
        [] if "--database-url" in args else ["--database-url", url]
    )
    result = CliRunner().invoke(main, base + args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and shown in errors[0]
    assert "hunter2" not in result.output
    if "--redis-url" in args:
        assert _jobs(url) == []  # nothing left behind


def test_exact_on_a_network_is_refused_before_any_work(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    args = ["run", "digits-mlp", "--method", "exact", "--database-url", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--method" in result.output and "GiB" in result.output and "approx" in result.output
    assert _jobs(url) == []


def test_extend_needs_a_budget_and_resume_says_when_there_is_nothing_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["run", "toy2d", "--quiet", "--database-url", url]).exit_code == 0
    result = runner.invoke(main, ["extend", "1", "--database-url", url])
    assert result.exit_code == 2 and "--max-nodes" in result.output
    result = runner.invoke(main, ["resume", "1", "--quiet", "--database-url", url])
    assert result.exit_code == 0 and "already succeeded" in result.output


def test_a_failed_job_exits_non_zero_with_its_reason(tmp_path: Path, monkeypatch) -> None:
    def broken(self, theta):
        raise RuntimeError("metrics are broken")

    monkeypatch.setattr(Toy2D, "metrics", broken)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = CliRunner().invoke(main, ["run", "toy2d", "--quiet", "--database-url", url])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "metrics are broken" in result.output
    assert _jobs(url)[0]["status"] == "failed"


@pytest.mark.slow
def test_ctrl_c_marks_the_job_interrupted_and_says_how_to_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    slow = ["--setting", "step_rule=fixed", "--setting", "alpha=1e-6", "--setting"]
    cmd = [sys.executable, "-m", "ridgerider.cli", "run", "toy2d", "--quiet", "--database-url", url]
    cmd += [*slow, "max_ride_steps=10000000", "--max-nodes", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "job 1 stored" in first, first
    time.sleep(1.0)  # riding now
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "ridgerider resume 1" in rest
    job = _jobs(url)[0]
    assert (job["status"], job["stopped_by"]) == ("cancelled", "interrupted")
