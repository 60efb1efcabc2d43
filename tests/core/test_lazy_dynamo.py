"""``use_compute_threads`` keeps torch.optim from importing the compiler, changing no bits."""

from __future__ import annotations

import json
import subprocess
import sys

SEARCH = """
import json, sys
import torch
{preload}
from ridgerider.core.threads import use_compute_threads
use_compute_threads()
from ridgerider.core import RRSettings, run_search
from ridgerider.problems import create
problem = create("tree-rl", {{"depth": 6, "tree_seed": 2}})
settings = RRSettings(**{{**problem.default_settings(), "max_nodes": 6}})
nodes = run_search(problem, settings, seed=1).nodes  # the MIS search is torch.optim's L-BFGS
print(json.dumps({{"dynamo": "torch._dynamo" in sys.modules,
                  "tree": [[n.key, n.loss.hex(), n.theta.double().sum().item().hex()]
                           for n in nodes]}}))
"""


def _search(preload: str) -> dict:
    code = SEARCH.format(preload=preload)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_a_search_no_longer_imports_the_compiler_and_gets_the_same_bits() -> None:
    lean = _search("")
    compiled = _search("import torch._dynamo  # what torch.optim imported on its first call")
    assert not lean["dynamo"] and compiled["dynamo"]
    assert lean["tree"] == compiled["tree"] and len(lean["tree"]) == 6
