"""No import cycle anywhere in ``src/ridgerider``, counting every kind of import.

The graph is built from the source (``ast``), not from what happens to be imported at run time:
- lazy imports inside functions count (they are cycles waiting for a caller);
- ``from pkg import name`` counts as importing ``pkg`` (its ``__init__`` runs and is read), and
  also ``pkg.name`` when that is a module; so a module that imports its own package's face,
  which imports it back, is a cycle;
- imports under ``if TYPE_CHECKING:`` do not count (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module, self.is_package, self.known = module, is_package, known
        self.targets: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.module if self.is_package else self.module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        self._add(base)
        for alias in node.names:
            self._add(f"{base}.{alias.name}")

    def _add(self, name: str) -> None:
        if name in self.known:
            self.targets.add(name)


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Module → the modules of ``root`` it imports (see the module docstring)."""
    modules = _modules(root)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_src_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50
    assert cycles(graph) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_check_sees_package_face_and_lazy_cycles(tmp_path: Path) -> None:
    """Controls: each kind of cycle the docstring names is found; TYPE_CHECKING is not."""
    _write(
        tmp_path,
        {
            "p/__init__.py": "from p.a import A\n",
            "p/a.py": "from p import b\nA = 1\n",  # imports its package's face
            "p/b.py": "",
            "q/__init__.py": "",
            "q/x.py": "def f():\n    from q.y import g\n",  # lazy
            "q/y.py": "from q.x import f\ndef g(): ...\n",
            "r/__init__.py": "",
            "r/m.py": "import typing\nif typing.TYPE_CHECKING:\n    from r.n import N\n",
            "r/n.py": "from r.m import typing\nN = 1\n",
        },
    )
    found = cycles(import_graph(tmp_path))
    assert ["p", "p.a"] in found
    assert ["q.x", "q.y"] in found
    assert not any("r.m" in c for c in found)
