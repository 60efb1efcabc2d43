"""``docker-compose.yml``'s services started as plain processes (no container engine here).

Each service's entrypoint and command run with that service's environment, as compose would
run them, with the few differences a single host without containers needs: the service names
(``postgres``, ``redis``, ``ray-head``) resolve to the machine's own servers on loopback, the
secret files are temporary files, and the API binds a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ["ridgerider"]  # deploy/Dockerfile's ENTRYPOINT
_VAR = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}`` and ``$$`` (a literal ``$``)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1)) or (m.group(2) or "")

    return _VAR.sub(one, value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """The compose services of one project as processes on this host."""

    def __init__(self, workdir: Path, secrets: dict[str, str], ray_port: int) -> None:
        self.compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        self.workdir = workdir
        self.api_port = free_port()
        self.ray_port = ray_port
        self.secret_files: dict[str, str] = {}
        for name, value in secrets.items():
            path = workdir / f"secret-{name}"
            path.write_text(value + "\n")
            path.chmod(0o600)
            self.secret_files[f"/run/secrets/{name}"] = str(path)
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}

    def localize(self, text: str) -> str:
        """Service names and container paths as they are on this host."""
        for inside, outside in self.secret_files.items():
            text = text.replace(inside, outside)
        text = text.replace("ray-head:6380", f"127.0.0.1:{self.ray_port}")
        text = text.replace("--port=6380", f"--port={self.ray_port}")
        return text.replace("0.0.0.0", "127.0.0.1")

    def env(self, service: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RIDGERIDER_")}
        base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        base |= {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
        declared = self.compose["services"][service].get("environment", {})
        for key, value in declared.items():
            base[key] = self.localize(interpolate(str(value), base))
        return base

    def argv(self, service: str) -> list[str]:
        spec = self.compose["services"][service]
        argv = [*spec.get("entrypoint", ENTRYPOINT), *spec.get("command", [])]
        argv = [self.localize(interpolate(a, {})) for a in argv]
        if "--port" in argv:  # the API: a free port instead of 8000
            argv[argv.index("--port") + 1] = str(self.api_port)
        return argv

    def start(
        self, service: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{service}-{len(self.procs.get(service, []))}.log").open("wb")
        proc = subprocess.Popen(
            self.argv(service),
            env=self.env(service) | (extra_env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        self.procs.setdefault(service, []).append(proc)
        return proc

    def run_once(self, service: str, timeout: float = 120) -> str:
        proc = self.start(service)
        assert proc.wait(timeout=timeout) == 0, self.logs(service)
        return self.logs(service)

    def logs(self, service: str) -> str:
        return "\n".join(p.read_text() for p in sorted(self.workdir.glob(f"{service}-*.log")))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.procs["api"][-1].poll() is None, self.logs("api")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("api not ready:\n" + self.logs("api"))

    def wait_serving(self, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
        """Wait until a ``worker`` process joined Ray and its workers serve the archive."""
        deadline = time.monotonic() + timeout
        index = self.procs["worker"].index(proc)
        log = self.workdir / f"worker-{index}.log"
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            if "serving" in log.read_text():
                return
            time.sleep(0.2)
        raise AssertionError("worker not serving:\n" + log.read_text())

    def wait_ray(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        check = ["ray", "health-check", f"--address=127.0.0.1:{self.ray_port}"]
        while time.monotonic() < deadline:
            assert self.procs["ray-head"][-1].poll() is None, self.logs("ray-head")
            done = subprocess.run(check, env=self.env("ray-head"), capture_output=True, timeout=60)
            if done.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError("ray head not healthy:\n" + self.logs("ray-head"))

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        proc.wait(timeout=60)

    def stop(self) -> None:
        """SIGTERM every process still running (workers finish their branch), then Ray."""
        for name in ("api", "worker"):
            for proc in self.procs.get(name, []):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        for name in ("api", "worker"):
            for proc in self.procs.get(name, []):
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.kill(proc)
        env = self.env("ray-head")
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
        for proc in self.procs.get("ray-head", []):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(proc)


def sdk_token(stack: Stack, user: str) -> str:
    """A token made with ``ridgerider token create``, in the API service's environment."""
    made = subprocess.run(
        ["ridgerider", "token", "create", "--user", user],
        env=stack.env("api"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def job_tree(client: Any, job_id: int) -> list[tuple[Any, ...]]:
    return [(tuple(map(tuple, n.fingerprint)), n.loss) for n in client.tree(job_id).nodes]
