"""The package's wings and the one-way imports between them (docs/architecture.md).

base <- runtime, base <- stages, and the tools over everything; a stage uses another stage only
through its public API (the package or module itself, never an inner module or a private name);
the runtime never imports a stage. Checked on the source, so a new import that breaks the rule
fails here, naming the file and the line.
"""

from __future__ import annotations

import ast
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


def test_the_rules_call_the_package_only_through_thin_scripts():
    scripts = sorted((ROOT / "scripts").glob("*.py"))
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    for script in scripts:
        assert f'"../../scripts/{script.name}"' in rules, f"{script} is no rule's entry script"
        code = [ln for ln in script.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(code) <= 25, f"{script}: {len(code)} lines; an entry script only joins a stage to its job"
