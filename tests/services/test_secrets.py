"""Secrets stay secret: a known password and a known API token are nowhere they could leak.

The archive is a PostgreSQL role and a Redis ACL user, both with a known password (PostgreSQL
here may trust 127.0.0.1, so any password connects: what is tested is where the string goes).
Ray workers ride a job on it, on a local Ray whose GCS keeps its tables in Redis (as with GCS
fault tolerance), so everything Ray holds about the actors (their creation tasks with their
arguments, runtime environments, death causes) can be read back and searched; ``ray list actors
--detail`` shows part of the same tables (and needs the dashboard, which a minimal Ray lacks).
Each search has a control that the same search finds: a marker given to an actor the way the
URLs used to be given. Then the same password through ``ridgerider worker --database-url-file``
(``ps``, its output) and through the service (logs, ``/metrics``, the OpenAPI document, error
bodies, a ``/readyz`` answer while the database and Redis refuse the role).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from polling import wait_until
from ridgerider.api import create_app
from ridgerider.config import Settings
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services import accounts, jobs
from ridgerider.services.archive import Archive, mask_url, open_archive

from .conftest import PG, REDIS, REDIS_URL, _pg_admin

ray = pytest.importorskip("ray")

from ridgerider.workers.ray import WorkerOptions, ensure_ray, start_workers  # noqa: E402

pytestmark = [PG, REDIS, pytest.mark.ray, pytest.mark.slow]

PASSWORD = f"known-secret-{uuid.uuid4().hex[:16]}"
"""In every URL of this module; must turn up nowhere else."""
CONTROL = f"known-control-{uuid.uuid4().hex[:16]}"
"""Given to an actor the way the URLs used to be: every search must find it."""
ROLE = f"rr_secret_{os.getpid()}"
TREE = {"depth": 6, "tree_seed": 2}
API = "/api/v1"


@pytest.fixture(scope="module")
def database_url(pg_session_db: str) -> Iterator[str]:
    """A role with the known password, owning a schema of the session database: its URL."""
    db = make_url(pg_session_db).database
    with _pg_admin(db) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {ROLE} CASCADE")
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"CREATE SCHEMA {ROLE} AUTHORIZATION {ROLE}")
    url = (
        make_url(pg_session_db)
        .set(drivername="postgresql+psycopg", username=ROLE, password=PASSWORD)
        .update_query_dict({"options": f"-csearch_path={ROLE}"})
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with _pg_admin(db) as conn:
            conn.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'"
            )
            conn.execute(f"DROP SCHEMA IF EXISTS {ROLE} CASCADE")
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


@pytest.fixture(scope="module")
def admin_redis(redis_server: None) -> Iterator[redis.Redis]:
    """A client of the test Redis as its default user."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture(scope="module")
def redis_url(admin_redis: redis.Redis) -> Iterator[str]:
    """A Redis ACL user with the known password: its URL (the user is deleted afterwards)."""
    admin_redis.acl_setuser(
        ROLE,
        enabled=True,
        reset=True,
        passwords=[f"+{PASSWORD}"],
        keys=["~*"],
        channels=["&*"],
        commands=["+@all"],
    )
    u = make_url(REDIS_URL)
    try:
        yield f"redis://{ROLE}:{PASSWORD}@{u.host}:{u.port or 6379}/{u.database or 0}"
    finally:
        admin_redis.acl_deluser(ROLE)


@pytest.fixture
def archive(database_url: str, redis_url: str, admin_redis: redis.Redis) -> Iterator[Archive]:
    """The archive at the secret URLs; its Redis keys are deleted afterwards."""
    opened = open_archive(database_url, redis_url)
    yield opened
    ns = opened.frontier.ns  # type: ignore[attr-defined]
    opened.close()
    keys = list(admin_redis.scan_iter(f"{ns}:*"))
    if keys:
        admin_redis.delete(*keys)


@dataclass
class RayView:
    """What a local Ray holds: its GCS tables (kept in Redis) and its session folder."""

    client: redis.Redis
    namespace: str
    session_dir: Path

    def tables(self) -> dict[str, str]:
        """Each GCS table in Redis (``ACTOR``, ``ACTOR_TASK_SPEC``, ``KV``, ...), the live actor
        table and the task events, each as text."""
        out: dict[str, str] = {}
        for key in self.client.scan_iter(f"RAY{self.namespace}@*"):
            kind = self.client.type(key)
            if kind == b"hash":
                parts = [b for item in self.client.hgetall(key).items() for b in item]
            elif kind == b"string":
                parts = [self.client.get(key) or b""]
            elif kind == b"none":  # deleted since the scan (a dead actor's task spec)
                continue
            else:
                raise AssertionError(f"GCS key {key!r} of type {kind!r}: read it too")
            out[key.decode().split("@", 1)[1]] = b"\n".join(parts).decode("utf-8", "replace")
        accessor = ray._private.state.state._global_state_accessor
        for name, rows in [
            ("actor table", accessor.get_actor_table(None, None)),
            ("task events", accessor.get_task_events()),
        ]:
            out[name] = b"\n".join(rows).decode("utf-8", "replace")
        out["actors"] = json.dumps(ray._private.state.actors(), default=str)
        return out

    def gcs(self) -> str:
        """:meth:`tables` as one text."""
        return "\n".join(self.tables().values())

    def logs(self) -> str:
        """Every file of Ray's session folder (its processes' logs), as one text."""
        out = []
        for path in self.session_dir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    out.append(path.read_bytes().decode("utf-8", "replace"))
        return "\n".join(out)


@pytest.fixture(scope="module")
def local_ray(admin_redis: redis.Redis) -> Iterator[RayView]:
    """A local Ray (2 CPUs) whose GCS keeps its tables in Redis under a namespace of its own."""
    if ray.is_initialized():
        pytest.skip("needs to start its own local Ray")
    namespace = f"rrsecrets{os.getpid()}{uuid.uuid4().hex[:6]}"
    u = make_url(REDIS_URL)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_REDIS_ADDRESS", f"{u.host}:{u.port or 6379}")
        mp.setenv("RAY_external_storage_namespace", namespace)
        for name in ("DATABASE_URL", "DATABASE_URL_FILE", "REDIS_URL", "REDIS_URL_FILE"):
            mp.delenv(f"RIDGERIDER_{name}", raising=False)  # workers must get the URLs anew
        try:
            ensure_ray(num_cpus=2, object_store_memory=100 * 2**20)  # as the CLI starts one
        except Exception as exc:
            pytest.skip(f"Ray cannot start here: {type(exc).__name__}: {exc}")
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    try:
        yield RayView(admin_redis, namespace, session)
    finally:
        ray.shutdown()
        keys = list(admin_redis.scan_iter(f"RAY{namespace}@*"))
        if keys:
            admin_redis.delete(*keys)


def control_actor() -> Any:
    """An actor given CONTROL as constructor argument and in its ``runtime_env``."""

    class Echo:  # defined here, so Ray ships it by value (tests are no package on workers)
        def __init__(self, value: str) -> None:
            self.value = value

        def get(self) -> str:
            return self.value

    env = {"env_vars": {"RR_TEST_CONTROL": CONTROL}}
    actor = ray.remote(num_cpus=0)(Echo).options(runtime_env=env).remote(CONTROL)
    assert ray.get(actor.get.remote(), timeout=120) == CONTROL
    return actor


def submit(archive: Archive, seed: int, max_nodes: int) -> tuple[int, int]:
    """A small tree-rl job on the archive: its id and the reference's node count."""
    problem = create("tree-rl", TREE)
    s = RRSettings(**{**problem.default_settings(), "order": "bfs", "max_nodes": max_nodes})
    job = jobs.submit(archive.storage, archive.frontier, "tree-rl", TREE, s, seed=seed)
    return job.id, len(run_search(problem, s, seed=seed).nodes)


def test_ray_workers_never_carry_the_password(
    local_ray: RayView,
    archive: Archive,
    database_url: str,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert PASSWORD in database_url and PASSWORD in redis_url  # control: the secret is given
    caplog.set_level("DEBUG", logger="ridgerider")
    caplog.set_level("INFO")
    job_id, nodes = submit(archive, seed=1, max_nodes=8)
    pool = start_workers(database_url, redis_url, 2, job_id=job_id, options=WorkerOptions())
    try:
        assert pool.wait(180), "the job did not finish"
        assert pool.error is None
        pool_text = repr(pool)
        assert pool._handover is not None and pool._handover.redis is not None
        handover = [pool._handover.database.path, pool._handover.redis.path]
        assert all(Path(p).exists() for p in handover)
        control = control_actor()
        alive = [
            a
            for a in ray._private.state.actors().values()
            if a["ActorClassName"] == "WorkerHost" and a["State"] == "ALIVE"
        ]
        assert len(alive) == 2  # done, not yet stopped: Ray still holds their creation tasks
        tables = local_ray.tables()
        assert CONTROL in tables["ACTOR_TASK_SPEC"], "the search reads actors' arguments"
        live = "\n".join(tables.values())
        ray.kill(control)
    finally:
        pool.stop()
    job = archive.storage.get_job(job_id)
    assert job is not None and job.status == "succeeded" and job.nodes == nodes
    assert not any(Path(p).exists() for p in handover)  # the private files go with the pool
    dead, logs = local_ray.gcs(), local_ray.logs()
    assert CONTROL in dead, "the search reads what Ray keeps of dead actors (runtime_env)"
    assert CONTROL in logs, "the search reads Ray's logs"
    for where, text in {"live GCS": live, "GCS": dead, "Ray logs": logs}.items():
        assert PASSWORD not in text, where
    out, err = capfd.readouterr()
    for where, text in {"driver logs": caplog.text, "stdout": out, "stderr": err}.items():
        assert PASSWORD not in text, where
    assert PASSWORD not in pool_text


def test_worker_command_reads_the_urls_from_files(
    local_ray: RayView, archive: Archive, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """``ridgerider worker --database-url-file``: the password is not in ``ps`` or its output."""
    files = {"database": tmp_path / "database-url", "redis": tmp_path / "redis-url"}
    files["database"].write_text(database_url + "\n")
    files["redis"].write_text(redis_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDGERIDER_")}
    cmd = [sys.executable, "-c", "from ridgerider.cli import main; main()", "worker"]
    args = ["--ray-address", ray.get_runtime_context().gcs_address, "--num-workers", "1"]
    args += ["--database-url-file", str(files["database"])]
    args += ["--redis-url-file", str(files["redis"])]
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([*cmd, *args], stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        job_id, nodes = submit(archive, seed=2, max_nodes=6)
        end = time.monotonic() + 180
        while archive.storage.get_job(job_id).status == "running":
            assert proc.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()  # still serving
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()  # what ps shows
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    output = log.read_text()
    assert code == 0, output
    output += "\n" + output.replace("\n", "")  # the console wraps long lines
    job = archive.storage.get_job(job_id)
    assert job is not None and job.status == "succeeded" and job.nodes == nodes
    assert str(files["database"]) in cmdline  # control: ps shows the command line
    assert PASSWORD not in cmdline
    assert mask_url(database_url) in output  # the line naming the archive, password masked
    assert PASSWORD not in output
    assert PASSWORD not in local_ray.gcs()
    assert PASSWORD not in local_ray.logs()


def _refuse_the_role(admin_redis: redis.Redis, db: str, refuse: bool) -> None:
    """Make PostgreSQL and Redis refuse (or accept again) the role, dropping its connections."""
    with _pg_admin(db) as conn:
        conn.execute(f"ALTER ROLE {ROLE} {'NOLOGIN' if refuse else 'LOGIN'}")
        if refuse:
            conn.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'"
            )
    admin_redis.acl_setuser(ROLE, enabled=not refuse)
    if refuse:
        admin_redis.client_kill_filter(user=ROLE)


def test_the_service_never_shows_the_password_or_a_token(
    archive: Archive,
    database_url: str,
    redis_url: str,
    admin_redis: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG", logger="ridgerider")
    caplog.set_level("INFO")
    _, token = accounts.create_token(archive.storage, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    settings = Settings(database_url=database_url, redis_url=redis_url, workers=1)
    assert PASSWORD in settings.database_url  # control: the service is given the secret
    assert PASSWORD not in repr(settings)
    app = create_app(settings)
    bodies: dict[str, str] = {}
    with TestClient(app) as client:
        assert client.get(f"{API}/problems", headers=headers).status_code == 200  # control
        body = {"problem": "tree-rl", "params": {"depth": 4, "tree_seed": 2}, "seed": 3}
        job_id = client.post(f"{API}/jobs", json=body, headers=headers).json()["id"]
        wait_until(
            lambda: (
                client.get(f"{API}/jobs/{job_id}", headers=headers).json()["status"] == "succeeded"
            ),
            120,
            "the job",
        )
        answers = {
            "401 wrong token": client.get(f"{API}/jobs", headers={"Authorization": "Bearer rr_x"}),
            "401 no token": client.get(f"{API}/jobs"),
            "404": client.get(f"{API}/jobs/999999", headers=headers),
            "405": client.delete(f"{API}/jobs", headers=headers),
            "422": client.post(f"{API}/jobs", json={"problem": 1}, headers=headers),
        }
        db = make_url(database_url).database
        _refuse_the_role(admin_redis, db, refuse=True)
        try:
            answers["503 readyz"] = client.get("/readyz")
        finally:
            _refuse_the_role(admin_redis, db, refuse=False)
        for name, answer in answers.items():
            assert answer.status_code == int(name[:3]), (name, answer.text)
            bodies[name] = answer.text
        assert "error" in answers["503 readyz"].json()["checks"]["database"]
        bodies["/metrics"] = client.get("/metrics").text
        bodies["openapi.json"] = client.get(f"{API}/openapi.json").text
        bodies["app.openapi()"] = json.dumps(app.openapi())
        bodies["repr(service)"] = repr(app.state.service)
    out, err = capfd.readouterr()
    bodies |= {"logs": caplog.text, "stdout": out, "stderr": err}
    for where, text in bodies.items():
        assert PASSWORD not in text, where
        assert token not in text, where
