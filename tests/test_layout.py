"""The package map: imports flow downward only, with no cycles.

Every ``import`` of the package's own modules is read from the source
(module level, function level and ``TYPE_CHECKING`` blocks alike), so a
cycle cannot hide behind a deferred import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import lsst.ts.calibscripts

ROOT = Path(lsst.ts.calibscripts.__file__).parent
PACKAGE = "lsst.ts.calibscripts"

#: Each room and the rooms it may import (besides itself). The order is the map, bottom first.
ALLOWED: dict[str, set[str]] = {
    "observations": set(),
    "resources": set(),
    "version": set(),
    "sal": {"resources", "version"},
    "cp.camera": {"observations"},
    "cp.algorithms": {"cp.camera", "observations"},
    "cp.butler": {"cp.camera", "cp.algorithms", "observations"},
    "cp.tasks": {"cp.camera", "cp.algorithms", "cp.butler", "observations"},
    "cp": {"cp.butler"},  # the persisted-name modules
    "script": {"sal", "resources", "utils"},
    # The public namespaces of lsst.ts.utils and lsst.ts.salobj over sal/ and script/.
    "utils": {"sal"},
    "salobj": {"sal", "script", "utils", "resources", "version"},
    # ... and of lsst.ts.standardscripts (BaseScriptTestCase, the scripts directory).
    "standardscripts": {"script", "resources"},
    "control": {"sal", "observations"},
    "simulator": {"sal", "cp.camera", "cp.algorithms", "cp.butler", "observations", "resources"},
    "calibrations": {
        "sal",
        "salobj",
        "utils",
        "script",
        "control",
        "cp.camera",
        "cp.algorithms",
        "cp.butler",
        "observations",
        "resources",
    },
    "queue": {"sal", "script", "resources"},
    # The results report reads the Butler (cp; cp.tasks to make a verification residual again)
    # and judges with the scripts' majority rule.
    "report": {
        "cp.camera",
        "cp.algorithms",
        "cp.butler",
        "cp.tasks",
        "calibrations",
        "observations",
        "resources",
    },
    "ui": {"sal", "script", "queue", "simulator", "report", "resources"},
}


#: Declared exceptions, each with its reason.
EXCEPTIONS = {
    # run_script --simulate starts the simulated observatory in the same
    # process (imported only for that option); the command sits at the top.
    ("lsst.ts.calibscripts.script.run_script", "lsst.ts.calibscripts.simulator.observatory"),
    # ... and its --executor/--bps-site options are the simulated OCPS's, defined once there.
    ("lsst.ts.calibscripts.script.run_script", "lsst.ts.calibscripts.simulator.executors.settings"),
}


def room_of(module: str) -> str:
    """Return the room of a module of the package (``cp.tasks``, ``sal``...)."""
    parts = module.removeprefix(PACKAGE + ".").split(".")
    if parts[0] == "cp" and len(parts) > 1 and parts[1] in ("camera", "algorithms", "butler", "tasks"):
        return f"cp.{parts[1]}"
    return parts[0]


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


@cache
def imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "data" in path.relative_to(ROOT).parts:
            continue
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found.update(t for t in targets if t.startswith(PACKAGE + ".") and _exists(t))
        graph[name] = found - {name}
    return graph


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.removeprefix(PACKAGE + ".").split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Yield one cycle per strongly connected group of modules (depth-first)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                yield [*stack[stack.index(nxt) :], nxt]
            elif nxt not in state:
                yield from visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            yield from visit(node)


# The package's own __init__ and the top-level command (cli) may import anything.
ROOMS = sorted({room_of(m) for m in imports() if m != PACKAGE} - {"cli"})


@pytest.mark.parametrize("room", ROOMS)
def test_no_import_cycles_in_a_room(room: str) -> None:
    graph = {
        m: {d for d in deps if room_of(d) == room and not d.endswith("__init__")}
        for m, deps in imports().items()
        if room_of(m) == room and m != f"{PACKAGE}.{room}"
    }
    assert list(cycles(graph)) == []


@pytest.mark.parametrize("room", ROOMS)
def test_imports_flow_downward(room: str) -> None:
    assert room in ALLOWED, f"{room} is not on the map in tests/test_layout.py"
    wrong = sorted(
        f"{module} imports {dependency}"
        for module, dependencies in imports().items()
        if room_of(module) == room
        for dependency in dependencies
        if room_of(dependency) not in ALLOWED[room] | {room}
        and dependency != PACKAGE
        and (module, dependency) not in EXCEPTIONS
    )
    assert wrong == []


@pytest.mark.parametrize("room", ["cp/algorithms", "cp/camera"])
def test_numpy_rooms_import_no_butler(room: str) -> None:
    for path in (ROOT / room).glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
        assert not {n for n in names if n.startswith(("lsst.daf", "lsst.pipe", "lsst.resources"))}, path
