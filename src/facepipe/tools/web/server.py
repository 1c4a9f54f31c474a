"""Running the dashboard: the listening socket, uvicorn, and a clean stop (its settings: settings.py).

Ctrl-C (SIGINT) or SIGTERM: the live streams close, uvicorn stops taking requests, then every run
the server started gets SIGINT on its process group (as Ctrl-C in a terminal would), and the server
waits for them: snakemake marks their episodes `cancelled` and clears the registry. A second
Ctrl-C stops waiting for open connections, never for the runs (launcher.Launcher.stop_all).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

from ...base.errors import FacepipeError
from .app import create_app
from .settings import Settings


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
