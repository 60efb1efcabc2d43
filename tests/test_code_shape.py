"""Small modules and short functions: a guard the layout keeps (migrations are history)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ridgerider"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
"""Signature and docstring included: a body of about 60 lines at most."""


def _modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "migrations" not in p.parts]


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in _modules()}
    assert len(sizes) > 50
    assert {k: v for k, v in sizes.items() if v > MAX_MODULE_LINES} == {}


def test_no_function_is_long() -> None:
    long: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.name}"] = lines
    assert long == {}
