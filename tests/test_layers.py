"""Architecture: the import contracts of pyproject.toml hold, and the core stays light."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pydantic", "click", "rich", "sqlalchemy", "redis", "ray", "fastapi", "httpx")


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    if exe is None:
        pytest.fail("lint-imports (import-linter) is not installed in this environment")
    return exe


def _config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _ours(module: str) -> bool:
    return module.split(".")[0] == "ridgerider"


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [_lint_imports(), "--no-cache", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ini(cfg: dict, contracts: list[dict]) -> str:
    lines = ["[importlinter]", f"root_package = {cfg['root_package']}"]
    # import-linter refuses external forbidden modules (pydantic, ...) without this flag.
    lines += ["include_external_packages = True", ""]
    for i, c in enumerate(contracts):
        lines.append(f"[importlinter:contract:c{i}]")
        for key, value in c.items():
            if isinstance(value, list):
                lines.append(f"{key} =")
                lines.extend(f"    {v}" for v in value)
            elif isinstance(value, bool):
                lines.append(f"{key} = {'True' if value else 'False'}")
            else:
                lines.append(f"{key} = {value}")
        lines.append("")
    return "\n".join(lines)


def test_contracts_are_declared():
    cfg = _config()
    kinds = {c["type"] for c in cfg["contracts"]}
    assert {"forbidden", "layers"} <= kinds
    forbidden = next(
        c
        for c in cfg["contracts"]
        if c["type"] == "forbidden" and c["source_modules"] == ["ridgerider.core"]
    )
    assert {"pydantic", "click", "rich", "sqlalchemy", "ridgerider.problems"} <= set(
        forbidden["forbidden_modules"]
    )


def test_import_contracts_hold_for_existing_modules(tmp_path):
    """Every contract, restricted to modules that exist in this checkout, passes."""
    cfg = _config()
    contracts = []
    for c in cfg["contracts"]:
        c = dict(c)
        for key in ("layers", "forbidden_modules", "source_modules"):
            if key in c:
                c[key] = [m for m in c[key] if not _ours(m) or _exists(m)]
        if c["type"] == "layers" and len(c["layers"]) < 2:
            continue
        contracts.append(c)
    ini = tmp_path / "importlinter.ini"
    ini.write_text(_ini(cfg, contracts))
    proc = _run(["--config", str(ini)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_import_linter_control_detects_a_violation(tmp_path):
    """Control: a contract the core certainly breaks (it imports torch) is reported broken."""
    cfg = _config()
    contract = {
        "name": "control",
        "type": "forbidden",
        "source_modules": ["ridgerider.core"],
        "forbidden_modules": ["torch"],
    }
    ini = tmp_path / "control.ini"
    ini.write_text(_ini(cfg, [contract]))
    proc = _run(["--config", str(ini)])
    assert proc.returncode == 1
    assert "1 broken" in proc.stdout


def test_project_import_linter_config_passes():
    """``lint-imports`` with the project's own configuration, exactly as CI runs it."""
    cfg = _config()
    named = [
        m
        for c in cfg["contracts"]
        for key in ("layers", "forbidden_modules", "source_modules")
        for m in c.get(key, [])
    ]
    missing = sorted({m for m in named if _ours(m) and not _exists(m)})
    if missing:
        pytest.skip(f"contract names modules not in this checkout yet: {missing}")
    proc = _run([])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_core_import_does_not_pull_heavy_libraries():
    code = (
        "import json, sys\n"
        "import ridgerider.core\n"
        "import ridgerider.core.search, ridgerider.core.mis, ridgerider.core.lanczos\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_subprocess_check_can_see_heavy_imports():
    """Control: importing the problems package does load pydantic (so the check above works)."""
    code = "import sys, ridgerider.problems\nprint('pydantic' in sys.modules)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
