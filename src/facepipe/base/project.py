"""Where the project's own files are: the workflow, its profiles, the configuration and its schema.

facepipe runs from its project folder (a checkout, installed with `pip install -e .`), like
`snakemake`; these paths are that folder's, wherever the command is started.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SNAKEFILE = ROOT / "workflow" / "Snakefile"
PROFILES = ROOT / "workflow" / "profiles"
CONFIG_FILE = ROOT / "config" / "config.yaml"
SCHEMA_FILE = ROOT / "config" / "config.schema.yaml"
