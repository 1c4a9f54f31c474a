"""The settings `facepipe serve` runs with, and their rules: which hosts are the loopback, and the
token a server off the loopback requires. Every part of the dashboard reads them from here."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ...base.config import config_path
from ...base.errors import FacepipeError

DEFAULT_PORT = 8765
# Seconds between two looks at every episode's state and registry files.
POLL_S = 0.25
# What the server starts (the builds, and the dry runs behind the plan) runs this much nicer than
# the server itself (nice(1), which execs its command, so a build's pid stays its snakemake's):
# twenty builds at once on a workstation share its cores among themselves, and the page stays
# quick (bench/web.py, burst).
BACKGROUND_NICE = 10


def niced(argv: list[str]) -> list[str]:
    return ["nice", "-n", str(BACKGROUND_NICE), *argv]


@dataclass(frozen=True)
class Settings:
    workdir: Path  # where snakemake runs (its .snakemake/ folder): the folder serve started in
    data_root: Path  # absolute, for reading
    data_root_arg: str  # as configured: what snakemake is given, so its paths are the terminal's
    videos_dir: Path
    videos_dir_arg: str
    config_file: Path | None
    heartbeat_s: float
    season: dict = field(default_factory=dict)  # the season settings: which episodes make a season
    references: Path | None = None  # cluster.references (its names are offered when naming), absolute
    search: dict = field(default_factory=dict)  # what "find a person" embeds photos with: embed, stills, cluster
    # The Snakemake profile every build runs with (e.g. workflow/profiles/slurm on a login node);
    # None: the workstation profile (profiles/default), as for a plain `snakemake`.
    profile: Path | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    poll_s: float = POLL_S
    # How many of the page's builds run at once; more are queued (web.launcher). None: no limit.
    max_builds: int | None = None

    @classmethod
    def from_config(cls, cfg: dict, config_file: str | Path | None = None, workdir: str | Path | None = None,
                    **options) -> Settings:
        """Settings from the configuration base.config.load returned for `config_file`."""
        workdir = Path(workdir or os.getcwd()).resolve()
        path = config_path(config_file)
        references = (cfg.get("cluster") or {}).get("references")
        if options.get("profile") is not None:
            options["profile"] = checked_profile(workdir / options["profile"])
        options["max_builds"] = max_builds(options.get("max_builds"), options.get("profile"))
        return cls(workdir=workdir, data_root=workdir / cfg["data_root"], data_root_arg=str(cfg["data_root"]),
                   videos_dir=workdir / cfg["videos_dir"], videos_dir_arg=str(cfg["videos_dir"]),
                   config_file=path.resolve() if path else None,
                   heartbeat_s=float(cfg["progress"]["heartbeat_s"]), season=dict(cfg.get("season") or {}),
                   references=workdir / references if references else None,
                   search={k: cfg[k] for k in ("embed", "stills", "cluster") if k in cfg}, **options)

    @property
    def snakemake_options(self) -> list[str]:
        """What every build adds to its snakemake command line."""
        return ["--profile", str(self.profile)] if self.profile else []

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether a host (as given to --host, or named by a Host header without its port) is the
    loopback: `localhost`, or a loopback address (127.0.0.0/8, ::1, with or without brackets)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def max_builds(given: int | None, profile: Path | None) -> int | None:
    """The page's builds that may run at once: `given` (0: no limit); by default, on the
    workstation profile as many as the machine has cores (each build's jobs share them, and twenty
    builds side by side would only add their memory and slow the page), and through a --profile no
    limit (its cluster's queue orders the jobs)."""
    if given is not None:
        if given < 0:
            raise FacepipeError(f"--max-builds {given}: give a number of builds, or 0 for no limit")
        return given or None
    return None if profile is not None else max(1, os.cpu_count() or 1)


def checked_profile(path: Path) -> Path:
    """A Snakemake profile folder (holding config.yaml), absolute, or a one-line error."""
    path = path.resolve()
    if not (path / "config.yaml").is_file():
        raise FacepipeError(f"--profile {path}: no config.yaml there; give a Snakemake profile folder, "
                            "e.g. workflow/profiles/slurm")
    return path


def checked_token(host: str, token: str | None) -> str | None:
    """The token the server requires: `token` as given ("auto": a new random one). Off the loopback
    interface one is required; without it the server refuses to start."""
    if token == "auto":
        return secrets.token_urlsafe(24)
    if token is not None and len(token) < 12:
        raise FacepipeError("--token: use at least 12 characters, or --token auto for a random one")
    if token is None and not is_loopback(host):
        raise FacepipeError(
            f"--host {host} is not a loopback address, and serving the network needs a token: "
            "pass --token SECRET (or set FACEPIPE_WEB_TOKEN), or --token auto to have one generated and printed"
        )
    return token
