"""Configuration errors, told in one line that names the key and says what to do.

Snakemake's `validate` (which also fills in defaults) reports an invalid config with a dump of
the schema; facepipe checks the config against the same schema first and, if it is invalid,
says which key is wrong in one line.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def _describe(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = ", ".join(sorted(error.schema.get("properties", {})))
        where = f"{path}." if path else ""
        return f"unknown config key {where}{extra[0] if extra else '?'} (known here: {known})"
    if error.validator == "required":
        return f"config: {error.message}"
    return f"config key {path or '(top level)'}: {error.message}"


def problem(config: dict, schema_path: str | Path) -> str | None:
    """None if `config` fits the schema, else one line naming the first wrong key and the fix."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    return f"{_describe(error)}; fix it in config/config.yaml or in the file given with --configfile"
