"""A warm pool's intake: ``run --workers N`` hands it the whole request and loads no engine."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ridgerider.cli import main
from ridgerider.cli.intake import Intake
from ridgerider.cli.pooled import _stored, ask
from ridgerider.cli.request import RunRequest
from ridgerider.services.location import open_storage
from ridgerider.workers import registry

SRC = Path(__file__).resolve().parents[2] / "src"
RUN = ["run", "tree-rl", "--set", "depth=6", "--set", "tree_seed=2", "--order", "priority"]
ENGINE = ("torch", "ridgerider.core", "ridgerider.problems", "ridgerider.services.frontier")
HARNESS = f"""
import json, sys
from ridgerider.cli import main
try:
    main(sys.argv[1:], prog_name="ridgerider")
finally:
    sys.stderr.write("LOADED=" + json.dumps([m for m in {ENGINE!r} if m in sys.modules]) + "\\n")
"""


def _cli(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``ridgerider ARGS`` in a fresh interpreter: the result and the engine modules it loaded."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", HARNESS, *args], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    marker = [line for line in proc.stderr.splitlines() if line.startswith("LOADED=")]
    assert marker, proc.stderr
    return proc, json.loads(marker[-1].removeprefix("LOADED="))


class PoolProcess:
    """``ridgerider worker --no-ray`` on ``url``, running until :meth:`stop`."""

    def __init__(self, url: str, n: int = 2) -> None:
        cmd = [sys.executable, "-m", "ridgerider.cli", "worker", "--no-ray",
               "--num-workers", str(n), "--database-url", url]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        self.url = url
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while not (found := registry.find_pools(url)) or not found[0].intake:
            assert self.proc.poll() is None, self.proc.communicate()[0]
            assert time.monotonic() < deadline, "the pool did not register"
            time.sleep(0.1)
        self.entry = found[0]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> str:
        """Stop the pool (its process group for SIGKILL) and return what it printed."""
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        return self.proc.communicate(timeout=60)[0]


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[PoolProcess]:
    running = PoolProcess(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        yield running
    finally:
        running.stop(signal.SIGKILL)


def test_run_hands_its_request_to_a_pool_loads_no_engine_and_gets_the_same_tree(
    tmp_path: Path, pool: PoolProcess
) -> None:
    """Bad input refused as the command refuses it; a good request ridden to the same tree."""
    # Bad input: exit 2 with the command's own message, nothing stored by either.
    bad = ["run", "tree-rl", "--set", "depth=banana", "--database-url", pool.url]
    refused = CliRunner().invoke(main, [*bad, "--no-pool", "--workers", "1"])
    assert refused.exit_code == 2
    proc, loaded = _cli(*bad, "--workers", "1")
    assert proc.returncode == 2 and loaded == [], proc.stderr
    message = " ".join(refused.output.split()).split("Error: ")[-1]
    assert "depth" in message and message in " ".join(proc.stderr.split())
    storage = open_storage(pool.url)
    try:
        assert storage.list_jobs().items == []
    finally:
        storage.close()
    # A good one: the tree the command would have found itself.
    here, there = tmp_path / "here.json", tmp_path / "there.json"
    alone = CliRunner().invoke(main, [*RUN, "--database-url", pool.url, "--json", str(here),
                                      "-q", "--no-pool"])  # fmt: skip
    assert alone.exit_code == 0, alone.output
    proc, loaded = _cli(*RUN, "--workers", "3", "--database-url", pool.url, "--json", str(there))
    assert proc.returncode == 0, proc.stderr
    assert loaded == [], loaded  # checked, stored, ridden and reported by the pool
    said = " ".join((proc.stderr + proc.stdout).split())
    assert f"riding on the running worker pool (pid {pool.entry.pid}): 2 workers" in said
    assert "(--workers 3 asked for)" in said and "succeeded" in said
    a, b = json.loads(here.read_text()), json.loads(there.read_text())
    assert b["status"] == "succeeded" and b["job_id"] == a["job_id"] + 1
    for key in ("nodes", "solutions", "mis", "coverage", "params", "method", "order", "status"):
        assert b[key] == a[key], key
    intake = pool.entry.intake
    assert intake is not None and Path(intake).stat().st_mode & 0o777 == 0o600
    said = pool.stop()  # SIGTERM: the pool closes its intake and unregisters
    assert pool.proc.returncode == 0 and "stopped" in said, said
    assert not Path(intake).exists() and registry.find_pools(pool.url) == []


def test_resume_and_extend_go_to_the_pool_and_load_no_engine(
    tmp_path: Path, pool: PoolProcess
) -> None:
    """A queued job resumed, a budget raised, bad ones refused: no engine in the command."""
    from ridgerider.core import RRSettings
    from ridgerider.problems import create
    from ridgerider.services import jobs
    from ridgerider.services.archive import open_archive

    def report(path: Path) -> dict:
        got = json.loads(path.read_text())
        return {k: got[k] for k in ("nodes", "solutions", "mis", "coverage", "status")}

    def alone(*args: str) -> tuple[dict, int]:
        out = tmp_path / f"alone-{len(args)}.json"
        done = CliRunner().invoke(main, [*RUN, *args, "--database-url", pool.url, "--no-pool",
                                         "--json", str(out), "-q"])  # fmt: skip
        assert done.exit_code == 0, done.output
        return report(out), json.loads(out.read_text())["job_id"]

    archive = open_archive(pool.url)
    try:  # a job stored but never started (as a service that died before starting it)
        settings = RRSettings(**{**create("tree-rl", {"depth": 6}).default_settings(),
                                 "order": "priority"})  # fmt: skip
        params = {"depth": 6, "tree_seed": 2}
        queued = jobs.submit(archive.storage, archive.frontier, "tree-rl", params, settings,
                             start_now=False).id  # fmt: skip
    finally:
        archive.close()
    out = tmp_path / "resumed.json"
    proc, loaded = _cli("resume", str(queued), "--workers", "1", "--database-url", pool.url,
                        "--json", str(out))  # fmt: skip
    assert proc.returncode == 0 and loaded == [], proc.stderr
    assert "riding on the running worker pool" in proc.stdout + proc.stderr
    assert report(out) == alone()[0]
    proc, loaded = _cli("resume", str(queued), "--workers", "1", "--database-url", pool.url)
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0 and loaded == [] and f"job {queued} already succeeded" in said
    # extend: a job its node budget stopped runs on to the new one, as one run to it would.
    small, job = alone("--max-nodes", "9")
    assert small["nodes"] == 9
    proc, loaded = _cli("extend", str(job), "--max-nodes", "20", "--workers", "2",
                        "--database-url", pool.url, "--json", str(out))  # fmt: skip
    assert proc.returncode == 0 and loaded == [], proc.stderr
    assert report(out) == alone("--max-nodes", "20")[0]
    # Refused as the command refuses them, nothing changed.
    for bad in (["extend", str(job), "--max-nodes", "5"], ["resume", "999"]):
        own = CliRunner().invoke(main, [*bad, "--database-url", pool.url, "--no-pool"])
        proc, loaded = _cli(*bad, "--workers", "1", "--database-url", pool.url)
        assert own.exit_code == proc.returncode == 2 and loaded == [], proc.stderr
        message = " ".join(own.output.split()).split("Error: ")[-1]
        assert message and message in " ".join(proc.stderr.split()), (message, proc.stderr)
    storage = open_storage(pool.url)
    try:
        assert storage.get_job(job).settings["max_nodes"] == 20
    finally:
        storage.close()


def test_a_job_whose_pool_dies_goes_on_in_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool is SIGKILLed mid-job: the command goes on with workers of its own.

    Starting Ray is made to raise (as in ``test_pool_reuse``): the job then fails naming it,
    which shows that the command went on to start its own workers for the job the pool took.
    """
    import ridgerider.workers.ray as ray_workers

    def no_ray(*args: object, **kwargs: object) -> None:
        raise RuntimeError("own Ray workers asked for")

    monkeypatch.setattr(ray_workers, "start_workers", no_ray)
    pool = PoolProcess(f"sqlite:///{tmp_path / 'archive.db'}", n=1)
    big = ["run", "tree-rl", "--set", "depth=12", "--set", "tree_seed=5", "--workers", "1"]
    storage = open_storage(pool.url)
    try:
        killer = _kill_when_stored(pool, storage)
        result = CliRunner().invoke(main, [*big, "--database-url", pool.url])
        killer.join()
        (job,) = storage.list_jobs().items
    finally:
        pool.stop(signal.SIGKILL)
        storage.close()
    said = " ".join(result.output.split())
    assert result.exit_code == 1, said
    assert f"the worker pools stopped: job {job.id} goes on here" in said
    assert "own Ray workers asked for" in said and job.status == "failed"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # its end
def test_a_job_stored_by_a_pool_that_dies_before_starting_it_goes_on_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool stores the job and dies before it starts it or answers: the command goes on.

    The window the test above hits by chance, made certain: the intake's ``jobs.start`` closes
    the pool's registration and ends its thread (no answer). The command finds the job by its
    key, still ``queued``, and goes on with its own workers (made to fail, as above).
    """
    import ridgerider.services.jobs as jobs
    import ridgerider.workers.ray as ray_workers

    def no_ray(*args: object, **kwargs: object) -> None:
        raise RuntimeError("own Ray workers asked for")

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    with Intake(url, None, {"cpu": 1}) as intake:
        registration = registry.Registration(url, 1, intake=intake.path)

        def dies(*args: object, **kwargs: object) -> None:
            registration.close()
            raise SystemExit  # the intake's thread ends without an answer

        monkeypatch.setattr(jobs, "start", dies)
        monkeypatch.setattr(ray_workers, "start_workers", no_ray)
        result = CliRunner().invoke(main, [*RUN, "--workers", "1", "--database-url", url])
    said = " ".join(result.output.split())
    storage = open_storage(url)
    try:
        (job,) = storage.list_jobs().items
    finally:
        storage.close()
    assert result.exit_code == 1, said
    assert f"job {job.id} stored in" in said
    assert f"the worker pools stopped: job {job.id} goes on here" in said
    assert "own Ray workers asked for" in said and job.status == "failed"


def _kill_when_stored(pool: PoolProcess, storage) -> object:
    import threading

    def kill() -> None:
        deadline = time.monotonic() + 120
        while not storage.list_jobs().items and time.monotonic() < deadline:
            time.sleep(0.05)
        pool.stop(signal.SIGKILL)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_an_intake_declines_what_it_cannot_take_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    request = RunRequest("tree-rl", ("depth=3",)).to_json()
    # A relative path means the command's folder: a pool elsewhere must not read it.
    elsewhere = RunRequest("mnist-mlp", ("data_dir=idx",), cwd=str(tmp_path / "x")).to_json()
    with Intake(url, None, {"gpu": 1}) as intake:  # a pool of GPU workers only
        assert os.path.getsize(intake.path) == 0 and len(intake.path) <= 100
        replies = [
            ask(intake.path, {"op": "submit", "request": request}, 30),
            ask(intake.path, {"op": "submit", "request": {**request, "code": "import os"}}, 30),
            ask(intake.path, {"op": "submit", "request": {**request, "seed": "many"}}, 30),
            ask(intake.path, {"op": "run", "request": request}, 30),
            ask(intake.path, {"op": "result", "job_id": 1}, 30),  # no such job
            ask(intake.path, {"op": "submit", "request": elsewhere}, 30),
        ]
    assert replies[0] == {"decline": "this pool has no workers for cpu jobs"}
    assert all(set(r or {}) == {"decline"} for r in replies), replies
    assert "code" in replies[1]["decline"] and "seed" in replies[2]["decline"]
    assert replies[5] == {"decline": "data_dir: a relative path of the command's"}
    assert not Path(intake.path).exists()
    assert ask(intake.path, {"op": "result", "job_id": 1}, 5) is None  # closed: no answer
    storage = open_storage(url)
    try:
        assert storage.list_jobs().items == []
    finally:
        storage.close()


def test_an_intake_takes_a_request_as_the_command_checks_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    with Intake(url, None, {"cpu": 1}) as intake:
        bad = RunRequest("tree-rl", ("depth=3",), ("max_nodes=0",)).to_json()
        refused = ask(intake.path, {"op": "submit", "request": bad}, 30)
        good = RunRequest("tree-rl", ("depth=3",), (), {"max_nodes": 7}, seed=3, name="n", key="k")
        taken = ask(intake.path, {"op": "submit", "request": good.to_json()}, 30)
        absolute = RunRequest("mnist-mlp", (f"data_dir={tmp_path / 'none'}",)).to_json()
        missing = ask(intake.path, {"op": "submit", "request": absolute}, 30)
    assert refused is not None and "max_nodes" in refused["error"]
    assert missing is not None and "data_dir" in missing["error"]  # checked like any request
    assert taken is not None and taken["max_nodes"] == 7 and taken["problem"] == "tree-rl"
    storage = open_storage(url)
    try:
        (job,) = storage.list_jobs().items
    finally:
        storage.close()
    assert (job.id, job.seed, job.name, job.settings["max_nodes"]) == (taken["job_id"], 3, "n", 7)
    # An answer lost on the way (the pool killed as it replied): the command finds the job
    # by the request's key instead of storing it again.
    assert _stored(url, good) == taken
    assert _stored(url, dataclasses.replace(good, key="another")) is None


def test_an_intake_resumes_and_extends_only_what_it_may(tmp_path: Path) -> None:
    from ridgerider.core import RRSettings
    from ridgerider.services import jobs
    from ridgerider.services.archive import open_archive

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    archive = open_archive(url)
    try:
        rr = RRSettings(max_nodes=30)
        job = jobs.submit(archive.storage, archive.frontier, "tree-rl", {"depth": 3}, rr,
                          start_now=False).id  # fmt: skip
    finally:
        archive.close()
    with Intake(url, None, {"gpu": 1}) as intake:
        gpu_only = ask(intake.path, {"op": "resume", "job_id": job}, 30)
    with Intake(url, None, {"cpu": 1}) as intake:
        replies = [
            ask(intake.path, {"op": "extend", "job_id": job, "max_nodes": "9"}, 30),
            ask(intake.path, {"op": "resume", "job_id": True}, 30),
            ask(intake.path, {"op": "resume", "job_id": 999}, 30),
            ask(intake.path, {"op": "extend", "job_id": job, "max_nodes": 5}, 30),
        ]
        storage = open_storage(url)
        try:
            untouched = storage.get_job(job)
            resumed = ask(intake.path, {"op": "resume", "job_id": job}, 30)
            after = storage.get_job(job)
        finally:
            storage.close()
    assert gpu_only == {"decline": "this pool has no workers for cpu jobs"}
    assert set(replies[0] or {}) == {"decline"} and set(replies[1] or {}) == {"decline"}
    assert replies[2] == {"error": "JOB: no job 999"}
    assert replies[3] is not None and "max_nodes" in replies[3]["error"]
    assert untouched is not None and untouched.status == "queued"
    assert untouched.settings["max_nodes"] == 30
    assert resumed is not None and resumed["status"] == "running" and resumed["job_id"] == job
    assert after is not None and after.status == "running"


def test_a_peer_of_the_same_user_is_served(tmp_path: Path) -> None:
    from ridgerider.cli.intake import _same_user

    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert _same_user(a)


def test_ctrl_c_while_a_pool_rides_marks_the_job_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in a command whose job a pool took: exit 130, the job stopped, how to resume."""
    import ridgerider.workers.progress as progress

    def interrupted(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(progress, "wait_for_pools", interrupted)
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    with Intake(url, None, {"cpu": 1}) as intake, registry.Registration(url, 1, intake=intake.path):
        result = CliRunner().invoke(main, [*RUN, "--workers", "1", "--database-url", url])
    said = " ".join(result.output.split())
    assert result.exit_code == 130, said
    storage = open_storage(url)
    try:
        (job,) = storage.list_jobs().items
    finally:
        storage.close()
    assert f"ridgerider resume {job.id}" in said
    assert (job.status, job.stopped_by) == ("cancelled", "interrupted")
