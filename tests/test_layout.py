"""The package's layout: its modules' imports point one way.

Every ``import`` / ``from ... import`` of a delayprop module counts, at the top of a module and
inside functions, methods and ``if TYPE_CHECKING:`` blocks alike, so an import moved into a
function to dodge a circle still shows up as the circle it is. ``from package import name``
counts as an import of ``package.name`` when that is a module, else of ``package``. Importing
a submodule also runs its package's ``__init__``; that implicit edge is not counted (every
package's ``__init__`` imports its own submodules, which would make each package a circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import delayprop

ROOT = Path(delayprop.__file__).parent


def module_files(root: Path) -> dict[str, Path]:
    """{dotted module name: file} of the package at ``root``."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = next(iter(modules)).split(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            # "import a.b.c" names a.b.c; keep the longest prefix that is one of our modules
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t.split(".")[0] == top and t != name:
                found.add(t)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a
    sorted list of module names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles_among_delayprop_modules():
    graph = import_graph(ROOT)
    assert "delayprop.layers" in graph and "delayprop.data.registry" in graph
    cycles = find_cycles(graph)
    assert not cycles, "import circles: " + "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a])
                                          if b in c) + ")" for c in cycles)


def test_the_data_path_and_the_network_point_one_way():
    """registry -> shd -> files -> reader, cache -> tensors -> reader; layers -> stream ->
    blocks; and neither the data nor the models know about training or the command line."""
    graph = import_graph(ROOT)
    assert "delayprop.stream" in graph["delayprop.layers"]
    assert "delayprop.layers" not in graph["delayprop.stream"]
    assert "delayprop.blocks" in graph["delayprop.stream"]
    assert "delayprop.data.files" in graph["delayprop.data.shd"]
    assert "delayprop.data.tensors" in graph["delayprop.data.cache"]
    for low in ("delayprop.data.reader", "delayprop.data.paths", "delayprop.data.tensors"):
        assert not any(m.startswith(("delayprop.data.registry", "delayprop.data.shd",
                                     "delayprop.data.cache", "delayprop.data.remote"))
                       for m in graph[low]), low
    upper = ("delayprop.training", "delayprop.train", "delayprop.cli", "delayprop.experiments")
    lower = [m for m in graph if m.startswith(("delayprop.data", "delayprop.rules",
                                                "delayprop.baselines"))
             or m in ("delayprop.layers", "delayprop.blocks", "delayprop.stream",
                      "delayprop.neurons", "delayprop.delays")]
    for m in lower:
        assert not [t for t in graph[m] if t.startswith(upper)], m
    models = ("delayprop.layers", "delayprop.blocks", "delayprop.stream", "delayprop.rules")
    for m in graph:
        if m.startswith("delayprop.data"):
            assert not [t for t in graph[m] if t.startswith(models)], m


def test_the_training_loop_names_no_method():
    """The loop drives the Method interface: no method name (and so no branch on one)
    appears in it; methods.py is where the methods differ."""
    from delayprop.training.methods import METHOD_CLASSES

    tree = ast.parse((ROOT / "training" / "loop.py").read_text())
    named = [n.value for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and n.value in METHOD_CLASSES]
    assert not named
    assert set(METHOD_CLASSES) == {"eprop", "bptt", "dcls"}


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("a_imports_b", [
    "from pkg.b import g\n",  # top level
    "def f():\n    from pkg.b import g\n    return g\n",  # inside a function
    "def f():\n    from .b import g\n    return g\n",  # relative, inside a function
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.b\n",
    "def f():\n    from . import b\n    return b\n",
])
def test_the_checker_finds_a_circle_hidden_in_a_function(tmp_path, a_imports_b):
    root = _package(tmp_path, {"a.py": a_imports_b, "b.py": "import pkg.a\n\ndef g(): pass\n"})
    assert find_cycles(import_graph(root)) == [["pkg.a", "pkg.b"]]


def test_the_checker_passes_a_one_way_package(tmp_path):
    root = _package(tmp_path, {
        "a.py": "import os\nfrom pkg.sub import c\n",
        "sub/__init__.py": "from .c import h\n",
        "sub/c.py": "def h():\n    from pkg import b\n    return b\n",
        "b.py": "import json\n",
    })
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.b"}
    assert find_cycles(graph) == []
