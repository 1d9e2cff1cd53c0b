"""Serve an ASGI app with uvicorn in a background thread, for in-process HTTP listeners.

``serve_in_thread`` binds the socket itself (so a port already in use is a
``CalrefError`` naming ``host:port`` at once, and port 0 picks a free one), runs
uvicorn on it in a daemon thread and waits until the server is up. The
returned ``RunningServer`` knows its ``url`` and ``port`` and ``stop()``s it.
Used by the switchboard simulator (``run_in_thread``, for tests) and the push
listener of ``calref run``.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from rules.errors import CalrefError


@dataclass
class RunningServer:
    """A uvicorn server in a background thread; ``stop()`` ends it."""

    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait up to ``timeout`` seconds for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    name: str = "http server",
    startup_timeout: float = 10.0,
) -> RunningServer:
    """Serve the ASGI ``app`` on ``host:port`` (0: any free port) in a daemon thread.

    Returns once the server accepts connections. ``name`` appears in errors and
    the thread's name. Raises ``CalrefError`` when the address cannot be bound
    (naming ``host:port``) or the server does not start within ``startup_timeout``.
    """
    sock = _bind(host, port, name)
    bound: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, server_header=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"{name.replace(' ', '-')}-{bound}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise CalrefError(f"{name} did not start on {host}:{bound}")
        time.sleep(0.01)  # waiting for a real server thread, not for virtual time
    shown = f"[{host}]" if ":" in host else host
    return RunningServer(f"http://{shown}:{bound}", bound, server, thread)


def _bind(host: str, port: int, name: str) -> socket.socket:
    """A TCP socket bound to ``host:port``; a ``CalrefError`` naming the address when it cannot."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        if sock is not None:
            sock.close()
        reason = err.strerror or str(err)
        raise CalrefError(f"{name}: cannot listen on {host}:{port}: {reason}") from None
    return sock
