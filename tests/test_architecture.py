"""The package's wings and the one-way imports between them (docs/architecture.md).

base <- runtime, base <- stages, and the tools over everything; a stage uses another stage only
through its public API (the package or module itself, never an inner module or a private name);
the runtime never imports a stage; no module imports itself through others (a cycle), lazy
imports inside functions included. Checked on the source, so a new import that breaks a rule
fails here, naming the file and the line.
"""

from __future__ import annotations

import ast
from itertools import pairwise
from pathlib import Path

import pytest

from facepipe.base.project import ROOT

PACKAGE = ROOT / "src" / "facepipe"
WINGS = ("base", "stages", "runtime", "tools")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def imports(path: Path, module: str):
    """(line, imported module, names) of every facepipe import of a module, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "facepipe":
                yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "facepipe":
                    yield node.lineno, alias.name, []


def wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else None


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "stages" else None


def test_the_package_is_four_wings_and_nothing_else():
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith(("_", ".")))
    assert top == sorted(WINGS), top
    for name in WINGS:
        assert (PACKAGE / name / "__init__.py").is_file()


ALLOWED = {"base": {"base"}, "runtime": {"base", "runtime"}, "stages": {"base", "stages"},
           "tools": set(WINGS)}


@pytest.mark.parametrize("path, module", list(modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_imports_run_one_way(path, module):
    own = wing(module)
    for line, target, names in imports(path, module):
        assert wing(target) in ALLOWED.get(own, set(WINGS)), f"{path}:{line}: {own} imports {target}"
        mine, theirs = stage_of(module), stage_of(target)
        if own == "stages" and theirs and mine != theirs:
            public = ".".join(target.split(".")[:3])
            assert target == public, f"{path}:{line}: imports {target}, an inner module of stage {theirs}"
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path}:{line}: imports private {private} of stage {theirs}"


def import_graph() -> dict[str, dict[str, tuple[Path, int]]]:
    """module -> {module it imports: (file, line)}, lazy imports inside functions included. The edge
    goes to the module the statement names: `from . import x` to the submodule x if there is one,
    else to the package itself (whose __init__.py runs); a package's own import of its submodules
    is an edge like any other, so a submodule importing a name through its package closes a cycle."""
    known = {module: path for path, module in modules()}
    graph: dict[str, dict[str, tuple[Path, int]]] = {}
    for module, path in known.items():
        edges = graph.setdefault(module, {})
        for line, target, names in imports(path, module):
            for to in {f"{target}.{n}" if f"{target}.{n}" in known else target for n in names} or {target}:
                if to in known:
                    edges.setdefault(to, (path, line))
    return graph


def cycles(graph: dict[str, dict]) -> list[list[str]]:
    """Every strongly connected component of more than one module (or a module importing itself),
    as one cycle through it: [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:  # Tarjan; the graph is a few dozen modules deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1 or v in graph[v]:
                found.append(_cycle_through(graph, set(component), min(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_through(graph: dict[str, dict], component: set[str], start: str) -> list[str]:
    """The shortest path from `start` back to itself inside its component (breadth first)."""
    came = {start: None}
    queue = [start]
    for v in queue:
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while came[path[-1]] is not None:
                    path.append(came[path[-1]])
                return path[::-1] + [start]
            if w in component and w not in came:
                came[w] = v
                queue.append(w)
    raise AssertionError(f"{start} is on no cycle of its component")


def test_no_import_cycle_among_the_modules():
    graph = import_graph()
    shown = []
    for cycle in cycles(graph):
        hops = [f"{a} -> {b} ({graph[a][b][0].relative_to(ROOT)}:{graph[a][b][1]})" for a, b in pairwise(cycle)]
        shown.append("; ".join(hops))
    assert not shown, "import cycles (move the shared piece into a module both can import):\n" + "\n".join(shown)


def test_the_cycle_check_sees_a_cycle():
    graph = {"a": {"b": None}, "b": {"c": None}, "c": {"a": None}, "d": {"d": None}, "e": {"a": None}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["d", "d"]]


def test_the_rules_call_the_package_only_through_thin_scripts():
    scripts = sorted((ROOT / "scripts").glob("*.py"))
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    for script in scripts:
        assert f'"../../scripts/{script.name}"' in rules, f"{script} is no rule's entry script"
        code = [ln for ln in script.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(code) <= 25, f"{script}: {len(code)} lines; an entry script only joins a stage to its job"
