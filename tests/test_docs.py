"""The README stays what a newcomer reads in five minutes, and says what is true: its
configuration table is the schema's, its links lead somewhere; docs/architecture.md, which its
layout links to, names every module."""

from __future__ import annotations

import json
import re

from facepipe.base import config
from facepipe.base.project import ROOT

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_is_short_and_links_to_existing_docs():
    assert len(README) <= 12_000, len(README)
    links = re.findall(r"\]\(([^)]+)\)", README)
    assert {"docs/architecture.md", "docs/quality.md", "docs/speed.md", "docs/reliability.md"} <= set(links)
    for link in links:
        assert (ROOT / link).is_file(), link


def test_configuration_table_is_the_schema():
    rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]*)` \|", section("Configuration"), flags=re.M)
    defaults = config.defaults()
    flat = {}
    for name, value in defaults.items():
        flat.update({f"{name}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {name: value})
    assert [key for key, _ in rows] == list(flat), "every setting once, in the schema's order"
    for key, shown in rows:
        assert shown == (json.dumps(flat[key]) if flat[key] is None or isinstance(flat[key], bool)
                         else str(flat[key])), key


def test_layout_names_every_module():
    assert "(docs/architecture.md)" in section("Layout")
    text = (ROOT / "docs" / "architecture.md").read_text()
    layout = text.split("## Module by module\n", 1)[1].split("\n## ", 1)[0]
    for path in sorted((ROOT / "src" / "facepipe").rglob("*.py")):
        if path.name != "__init__.py":
            assert f"`{path.stem}`" in layout or f"`{path.stem}/`" in layout, f"{path} is not in docs/architecture.md"
    for package in sorted(p for p in (ROOT / "src" / "facepipe").rglob("*") if p.is_dir() and p.name != "__pycache__"):
        assert f"{package.name}/" in layout, f"{package} is not in docs/architecture.md"
