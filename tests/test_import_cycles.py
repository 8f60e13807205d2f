"""No import cycles: in afm/ and in the dashboard's app/, no module imports (directly or through others) itself.

The graph is read from the source with ``ast``, so nothing is imported. An edge is every import statement
that names another module of the same tree, wherever it stands: at the top, inside a function (a lazy import
still makes the two modules depend on each other; it only hides the cycle from the interpreter) or in a
``try``. The one exception is an import under ``if TYPE_CHECKING:``, which never runs.

- afm/: package-relative imports (``from . import native``, ``from .data import Dataset``) and absolute ones
  (``import afm.kernels``, ``from afm import plots``, ``from afm.model import AFM``). ``from . import x`` is an
  edge to the module ``x`` when afm has one, else to the package itself (``afm/__init__.py``, the node ``afm``).
- app/: the dashboard's modules import each other by plain names (``import state``, ``from jobs import pool``;
  ``streamlit_app.py`` puts app/ on ``sys.path``). The pages (app/pages/*.py) are scripts that Streamlit runs
  by path: they import modules, and nothing imports them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AFM = ROOT / "afm"
APP = ROOT / "app"
Graph = dict[str, set[str]]


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (the ``if`` whose body only type checkers read)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(source: str) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth, except those under ``if TYPE_CHECKING:``
    (its ``else`` branch does run, so it counts)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def package_graph(folder: Path, package: str = "afm") -> Graph:
    """Module -> the modules of the same package it imports. Nodes are dotted names (``afm.kernels``;
    ``afm`` for the package's ``__init__.py``)."""
    names = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}

    def module(path: Path) -> str:
        return package if path.stem == "__init__" else f"{package}.{path.stem}"

    def target(dotted: str) -> str | None:
        """The node a dotted module name lands on: ``afm.x.y`` is ``afm.x`` (afm has no subpackages)."""
        parts = dotted.split(".")
        if parts[0] != package:
            return None
        return f"{package}.{parts[1]}" if len(parts) > 1 and parts[1] in names else package

    graph: Graph = {}
    for path in sorted(folder.glob("*.py")):
        edges: set[str] = set()
        for node in imports(path.read_text()):
            if isinstance(node, ast.Import):
                edges |= {t for alias in node.names if (t := target(alias.name))}
                continue
            if node.level > 1:  # above the package: not one of its modules
                continue
            base = package if node.level == 1 else (node.module or "")
            if node.level == 1 and node.module:
                base = f"{package}.{node.module}"
            if base == package:  # from . import x / from afm import x: module x, or a name of __init__
                for alias in node.names:
                    edges.add(f"{package}.{alias.name}" if alias.name in names else package)
            elif (t := target(base)) is not None:
                edges.add(t)
        graph[module(path)] = edges - {module(path)}
    return graph


def script_graph(folder: Path, leaves: Iterable[Path] = ()) -> Graph:
    """Module -> the modules of ``folder`` it imports by plain name (``import state``, ``from jobs import
    pool``); ``leaves`` (scripts nothing imports) are nodes too, named by their path below ``folder``."""
    names = {p.stem for p in folder.glob("*.py")}
    graph: Graph = {}
    for path in [*sorted(folder.glob("*.py")), *leaves]:
        edges: set[str] = set()
        for node in imports(path.read_text()):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name in names}
            elif node.level == 0 and node.module in names:
                edges.add(node.module)
        name = path.stem if path.parent == folder else path.relative_to(folder).as_posix()
        graph[name] = edges - {name}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan's algorithm), each as the path
    ``[a, b, ..., a]`` that starts at the component's first module in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(_path_through(graph, component) for component in components)


def _path_through(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle from the component's first module back to itself (breadth first, inside it)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:  # back at the start: walk the way here backwards
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not a cycle")  # a component of Tarjan's always is


def _report(where: str, found: list[list[str]]) -> str:
    return f"import cycles in {where}:\n" + "\n".join("  " + " -> ".join(c) for c in found)


# ---------------------------------------------------------------------------- the trees


# Cycles known and owned elsewhere: each must be broken by its owner, then leave this list (the test fails
# on a cycle not listed here, and on a listed one that is gone).
KNOWN_AFM: dict[str, str] = {}


def test_afm_has_no_import_cycle() -> None:
    graph = package_graph(AFM)
    assert {"afm", "afm.model", "afm.kernels", "afm.native"} <= set(graph)
    assert "afm.native" in graph["afm.kernels"] and "afm.kernels" in graph["afm.model"]  # the reader sees imports
    found = {" -> ".join(c): c for c in cycles(graph)}
    new = [c for name, c in found.items() if name not in KNOWN_AFM]
    assert not new, _report("afm/", new)
    gone = set(KNOWN_AFM) - set(found)
    assert not gone, f"no longer a cycle, remove it from KNOWN_AFM: {sorted(gone)}"


def test_app_has_no_import_cycle() -> None:
    graph = script_graph(APP, sorted((APP / "pages").glob("*.py")))
    assert "streamlit_app" in graph and any(n.startswith("pages/") for n in graph)
    assert any(graph.values())  # the reader sees the modules' imports of each other
    found = cycles(graph)
    assert not found, _report("app/", found)


# ---------------------------------------------------------------------------- the reader and the search


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_every_kind_of_import_is_an_edge_but_type_checking_ones(tmp_path: Path) -> None:
    package = _write(
        tmp_path / "afm",
        {
            "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
            "a.py": "from . import b\nfrom .c import f\nimport afm.d\nimport os\n",
            "b.py": "def late():\n    from afm import e\n    import afm.f.g\n",
            "c.py": "import typing\nif typing.TYPE_CHECKING:\n    from . import a\nelse:\n    from afm.d import x\n",
            "d.py": "from afm import __version__\nfrom .. import elsewhere\n",
            "e.py": "try:\n    from .f import y\nexcept ImportError:\n    pass\n",
            "f.py": "",
        },
    )
    assert package_graph(package) == {
        "afm": set(),  # its only import is for type checkers
        "afm.a": {"afm.b", "afm.c", "afm.d"},
        "afm.b": {"afm.e", "afm.f"},  # imports inside a function count
        "afm.c": {"afm.d"},  # the TYPE_CHECKING branch does not; its else does
        "afm.d": {"afm"},  # a name of __init__; `from .. import` leaves the package
        "afm.e": {"afm.f"},
        "afm.f": set(),
    }
    app = _write(
        tmp_path / "app",
        {
            "state.py": "import training\nimport streamlit as st\nfrom jobs import pool\n",
            "training.py": "def go():\n    import state\n",
            "jobs.py": "import afm\n",
        },
    )
    page = _write(app / "pages", {"page.py": "import state\nimport jobs\n"}) / "page.py"
    assert script_graph(app, [page]) == {
        "jobs": set(),
        "state": {"training", "jobs"},
        "training": {"state"},
        "pages/page.py": {"state", "jobs"},
    }


def test_cycles_are_found_and_named() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"state": {"training", "jobs"}, "training": {"state"}, "jobs": set()}) == [
        ["state", "training", "state"]
    ]
    graph = {"a": {"b"}, "b": {"c", "x"}, "c": {"a"}, "x": {"y"}, "y": {"x"}, "z": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["x", "y", "x"]]  # one per cycle, each from its first module
    assert "afm.kernels -> afm.native -> afm.kernels" in _report(
        "afm/", cycles({"afm.kernels": {"afm.native"}, "afm.native": {"afm.kernels"}})
    )
