"""Multi-node Ray: a head and two worker nodes on ``ray.cluster_utils.Cluster``.

One worker node advertises a GPU (a declared resource: there is no CUDA here, so the GPU worker
computes on the CPU, ``WorkerOptions(num_gpus=1, device="cpu")``). The worker actors spread
over the nodes by their resources, a GPU job's branches are ridden on the GPU node only, and a
node removed mid-job (as an autoscaler or a failure would) costs nothing: its actors' branches
come back, the pool replaces the actors on a new node, and the tree is the undisturbed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from polling import wait_until
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
from ridgerider.services import jobs
from ridgerider.services.frontier.database import DatabaseFrontier
from ridgerider.services.storage.sql import SQLStorage

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from ridgerider.workers.ray import WorkerOptions, start_workers  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(540)]

BIG = {"depth": 8, "tree_seed": 2}
SMALL = {"depth": 6, "tree_seed": 2}


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A head that runs nothing (0 CPUs), a CPU node and a GPU node."""
    if ray.is_initialized():
        ray.shutdown()
    small = {"object_store_memory": 80 * 2**20, "include_dashboard": False}
    c = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **small})
    try:
        c.add_node(num_cpus=2, resources={"cpu_node": 1}, object_store_memory=80 * 2**20)
        c.add_node(num_cpus=1, num_gpus=1, object_store_memory=80 * 2**20)
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def submit(
    store: SQLStorage, params: dict[str, int], seed: int, accelerator: str, **kw: int
) -> Any:
    problem = create("tree-rl", params)
    settings = RRSettings(**{**problem.default_settings(), **kw})
    frontier = DatabaseFrontier(store)
    job = jobs.submit(store, frontier, "tree-rl", params, settings, seed=seed, lease_s=3.0,
                      accelerator=accelerator)  # fmt: skip
    return job.id, [(n.key, n.loss) for n in run_search(problem, settings, seed=seed).nodes]


def stored(store: SQLStorage, job_id: int) -> list[tuple[str, float]]:
    return [(n.key, n.loss) for n in store.iter_nodes(job_id)]


def nodes_of(infos: list[dict[str, Any]]) -> set[str]:
    return {i["node"] for i in infos}


def test_workers_spread_gpu_work_lands_on_the_gpu_node_and_a_removed_node_costs_nothing(
    cluster: Any, tmp_path: Path
) -> None:
    gpu_node = next(n["NodeID"] for n in ray.nodes() if n["Resources"].get("GPU"))
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    store = SQLStorage(url)
    # GPU workers first, so the CPU workers cannot take the GPU node's only CPU.
    gpus = start_workers(url, None, 1, options=WorkerOptions(num_gpus=1, device="cpu"))
    cpus = start_workers(url, None, 2, options=WorkerOptions(), reaper=False)
    try:
        wait_until(lambda: len(gpus.info()) == 1 and len(cpus.info()) == 2, 120, "actors")
        assert nodes_of(gpus.info()) == {gpu_node}
        cpu_nodes = nodes_of(cpus.info())
        assert len(cpu_nodes) == 1 and gpu_node not in cpu_nodes  # spread by resources
        (cpu_node,) = cpu_nodes

        gpu_job, gpu_ref = submit(store, SMALL, 5, "gpu")
        cpu_job, cpu_ref = submit(store, BIG, 3, "cpu", max_nodes=100, max_depth=64)
        wait_until(lambda: (store.get_job(cpu_job) or cpu_job).nodes >= 10, 120, "CPU rides")
        victim = next(n for n in cluster.list_all_nodes() if n.node_id == cpu_node)
        cluster.remove_node(victim)  # mid-job: both CPU actors die with it
        cluster.add_node(num_cpus=2, object_store_memory=80 * 2**20)  # the replacement node

        for job_id in (cpu_job, gpu_job):  # ~20 s idle; 180 s once ran out under four test
            # processes on two cores (the replacement raylet and its actors start slowly there)
            wait_until(lambda j=job_id: store.get_job(j).status == "succeeded", 360, "jobs")
        assert stored(store, cpu_job) == cpu_ref  # the undisturbed tree
        assert stored(store, gpu_job) == gpu_ref
        assert cpus.replaced >= 1
        (gpu_info,) = gpus.info()
        assert gpu_info["completed"] == len(gpu_ref)  # every GPU branch rode on the GPU node
        assert all(i["completed"] == 0 or i["node"] != gpu_node for i in cpus.info())
    finally:
        cpus.stop()
        gpus.stop()
        store.close()
