"""Running the dashboard: its settings, the listening socket, uvicorn, and a clean stop.

Ctrl-C (SIGINT) or SIGTERM: the live streams close, uvicorn stops taking requests, then every run
the server started gets SIGINT on its process group (as Ctrl-C in a terminal would), and the server
waits for them: snakemake marks their episodes `cancelled` and clears the registry. A second
Ctrl-C stops waiting for open connections, never for the runs (launcher.Launcher.stop_all).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ...base.config import config_path
from ...base.errors import FacepipeError

DEFAULT_PORT = 8765
# Seconds between two looks at every episode's state and registry files.
POLL_S = 0.25


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
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    poll_s: float = POLL_S

    @classmethod
    def from_config(cls, cfg: dict, config_file: str | Path | None = None, workdir: str | Path | None = None,
                    **options) -> "Settings":
        """Settings from the configuration base.config.load returned for `config_file`."""
        workdir = Path(workdir or os.getcwd()).resolve()
        path = config_path(config_file)
        return cls(workdir=workdir, data_root=workdir / cfg["data_root"], data_root_arg=str(cfg["data_root"]),
                   videos_dir=workdir / cfg["videos_dir"], videos_dir_arg=str(cfg["videos_dir"]),
                   config_file=path.resolve() if path else None,
                   heartbeat_s=float(cfg["progress"]["heartbeat_s"]), season=dict(cfg.get("season") or {}),
                   **options)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


def listen(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free port); one line if it cannot be had."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise FacepipeError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                            "give another --host or --port") from None
    sock.set_inheritable(False)
    return sock


def url(settings: Settings, port: int, with_token: bool = True) -> str:
    host = f"[{settings.host}]" if ":" in settings.host and not settings.host.startswith("[") else settings.host
    query = f"?token={settings.token}" if with_token and settings.token else ""
    return f"http://{host}:{port}/{query}"


def serve(settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    sock = listen(settings.host, settings.port)
    port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # ours, below: the runs must be stopped after uvicorn
            yield

    server = Server(config)
    print(f"facepipe serve: {url(settings, port)}  (data root {settings.data_root}, videos {settings.videos_dir}; "
          "Ctrl-C stops the server and cancels the runs it started)", flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop(signum: int) -> None:
            if server.should_exit:
                server.force_exit = True
                return
            print(f"facepipe serve: {signal.Signals(signum).name}: stopping", file=sys.stderr, flush=True)
            app.state.hub.close()
            server.should_exit = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        try:
            await server.serve(sockets=[sock])
        finally:
            await app.state.launcher.stop_all()

    asyncio.run(main())
    return 0
