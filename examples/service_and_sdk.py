"""The service and its Python SDK: submit a search, follow it, read and export its results.

Starts ``ridgerider serve`` in development mode on a free loopback port with a throwaway SQLite
archive (or uses a running service: ``--url``, with ``$RIDGERIDER_TOKEN`` outside development
mode), then, through :class:`ridgerider.client.Client`: submits a named, tagged tree-rl job
(a depth-6 tree of the paper's RL experiment), waits for it with a progress bar, prints its
solutions, finds it again by tag, writes its nodes as CSV (through a pandas DataFrame when
pandas is installed) and deletes it.

    python examples/service_and_sdk.py                 # its own service, stopped at the end
    python examples/service_and_sdk.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from ridgerider.client import Client


@contextlib.contextmanager
def local_service() -> Iterator[str]:
    """``ridgerider serve --dev`` on a free port with a temporary archive; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'archive.db'}"
        cmd = [
            "ridgerider",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--workers",
            "1",
            "--worker-threads",
        ]
        cmd += ["--log-level", "warning"]
        env = {**os.environ, "RIDGERIDER_DATABASE_URL": db}
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:  # ready once the archive is open and the workers started
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the service did not start")
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(30)


def main(url: str, out: Path) -> None:
    """Run the tour against the service at ``url``; the CSV goes to ``out``."""
    client = Client(url, os.environ.get("RIDGERIDER_TOKEN"))
    job = client.submit(
        "tree-rl",
        {"depth": 6, "tree_seed": 2},
        seed=0,
        max_nodes=60,
        name="sdk example",
        tags=["example"],
    )
    print(f"submitted job {job.id} ({job.status}, {job.phase}): accepted before its MIS is found")
    job = client.wait(job.id, timeout=300, progress=sys.stderr.isatty())
    assert job.mis is not None  # the worker found it first
    print(f"job {job.id} {job.status}: its MIS has {job.mis.negative_eigenvalues} ridges")
    print(f"  {job.nodes} nodes, stopped by {job.stopped_by}")
    solutions = client.solutions(job.id)
    for sol in solutions:
        print(f"  {sol.key:14} loss {sol.loss:+.3f}  reaches leaf {sol.metrics['leaf']}")
    found = client.list(tag="example")
    assert job.id in [j.id for j in found.items]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame = client.to_dataframe(job.id)
    except ImportError:  # pandas is optional: the same table as CSV
        out.write_bytes(client.nodes_csv(job.id))
    else:
        frame.to_csv(out, index=False)
        print(frame.groupby("depth")["loss"].describe())
    print(f"wrote {out}")
    client.delete(job.id)
    print(f"deleted job {job.id}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a running service (default: start one)")
    parser.add_argument("--out", type=Path, default=Path("nodes.csv"), help="the CSV to write")
    args = parser.parse_args()
    if args.url:
        main(args.url, args.out)
    else:
        with local_service() as service_url:
            main(service_url, args.out)
