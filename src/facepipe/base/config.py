"""Configuration: the schema (config/config.schema.yaml) is the one home of every default.

The workflow reads config/config.yaml (the user's settings, only what they change) and Snakemake's
`validate` fills in the rest from the schema. The `facepipe` command reads the same file the same
way (`load`). An invalid config is told in one line that names the key and says what to do:
Snakemake's own report is a dump of the schema, so facepipe checks first (`problem`).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

from .errors import FacepipeError
from .project import CONFIG_FILE, SCHEMA_FILE


@functools.lru_cache(maxsize=4)
def _schema(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def schema(path: str | Path = SCHEMA_FILE) -> dict:
    return copy.deepcopy(_schema(str(path)))


def defaults(path: str | Path = SCHEMA_FILE) -> dict:
    """Every setting at its default, as nested dicts, read from the schema."""

    def walk(node: dict):
        if node.get("type") == "object" and "properties" in node:
            return {key: walk(sub) for key, sub in node["properties"].items()}
        return copy.deepcopy(node.get("default"))

    return walk(_schema(str(path)))


def merge(base: dict, over: dict) -> dict:
    """`over` merged into a copy of `base`, section by section."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _describe(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = ", ".join(sorted(error.schema.get("properties", {})))
        where = f"{path}." if path else ""
        return f"unknown config key {where}{extra[0] if extra else '?'} (known here: {known})"
    return f"config key {path or '(top level)'}: {error.message}"


def problem(config: dict, schema_path: str | Path = SCHEMA_FILE) -> str | None:
    """None if `config` fits the schema, else one line naming the first wrong key and the fix."""
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(_schema(str(schema_path))).iter_errors(config))
    if error is None:
        return None
    return f"{_describe(error)}; fix it in config/config.yaml or in the file given with --configfile"


def config_path(config_file: str | Path | None = None) -> Path | None:
    """The config file a run from this folder reads: `config_file`, else config/config.yaml here if
    present, else the project's (None if there is none). Raises FacepipeError if `config_file` is missing."""
    if config_file is not None and not Path(config_file).is_file():
        raise FacepipeError(f"{config_file}: config file not found; give an existing file with --config")
    return Path(config_file) if config_file else next(
        (p for p in (Path("config/config.yaml"), CONFIG_FILE) if p.is_file()), None)


def load(config_file: str | Path | None = None, overrides: dict | None = None) -> dict:
    """The configuration a run from this folder would use: the schema's defaults, then the config
    file (config_path), then `overrides` (command-line options). Raises FacepipeError naming a wrong
    key or a missing file."""
    path = config_path(config_file)
    user = (yaml.safe_load(path.read_text()) or {}) if path else {}
    if not isinstance(user, dict):
        raise FacepipeError(f"{path}: not a YAML mapping of settings; see config/config.schema.yaml")
    user = merge(user, {k: v for k, v in (overrides or {}).items() if v is not None})
    wrong = problem(user)
    if wrong:
        raise FacepipeError(wrong)
    return merge(defaults(), user)
