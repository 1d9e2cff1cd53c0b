"""A real Radicale 3 CalDAV server on 127.0.0.1 for the CalDAV connector tests.

Radicale's own WSGI application is served over a real loopback socket from a
thread, with a temporary storage folder, ``[auth] type = none`` (or an
htpasswd file when a password test needs one) and rights that allow every
user everything. A thin WSGI layer in front of it counts requests (for the
call benchmark) and can inject faults (429 with Retry-After, 503, 500) for the
next requests, so throttling is tested over real HTTP too.
"""

from __future__ import annotations

import base64
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import radicale
import radicale.config

RIGHTS_ALLOW_ALL = """\
[all]
user: {user}
collection: .*
permissions: RrWw
"""

StartResponse = Callable[..., Any]


@dataclass
class Fault:
    """A canned reply given instead of forwarding a request to Radicale."""

    status: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class RadicaleServer:
    """Start with ``with RadicaleServer() as server:``; ``server.url`` is the base URL.

    Without ``users`` anyone (even anonymous) may do anything; with ``users``
    (name -> plain password, an htpasswd file) only those logins may.
    """

    def __init__(self, *, users: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="calref-radicale-")
        root = Path(self._tmp.name)
        rights = root / "rights"
        rights.write_text(RIGHTS_ALLOW_ALL.format(user=".+" if users else ".*"), encoding="utf-8")
        auth: dict[str, str] = {"type": "none"}
        if users:
            htpasswd = root / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in users.items()), encoding="utf-8")
            auth = {
                "type": "htpasswd",
                "htpasswd_filename": str(htpasswd),
                "htpasswd_encryption": "plain",
                "delay": "0",
            }
        conf = radicale.config.load(())
        conf.update(
            {
                "storage": {"filesystem_folder": str(root / "collections")},
                "auth": auth,
                "rights": {"type": "from_file", "file": str(rights)},
                "logging": {"level": "warning", "mask_passwords": "True"},
            },
            "test",
            privileged=True,
        )
        self._app = radicale.Application(conf)
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.bytes_out = 0
        self._lock = threading.Lock()
        self._httpd = make_server(
            "127.0.0.1",
            0,
            self._wsgi,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread: threading.Thread | None = None

    # -- WSGI layer -------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                environ["wsgi.input"].read(length)
            start_response(
                fault.status,
                [*fault.headers, ("Content-Length", str(len(fault.body)))],
            )
            return [fault.body]
        result: Iterable[bytes] = self._app(environ, start_response)
        body = b"".join(result)
        with self._lock:
            self.bytes_out += len(body)
        return [body]

    def fail_next(self, *faults: Fault) -> None:
        """Answer the next ``len(faults)`` requests with these faults, in order."""
        with self._lock:
            self.faults.extend(faults)

    def reset_count(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_out = 0

    # -- life cycle -------------------------------------------------------
    def start(self) -> RadicaleServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers (e.g. 401/403): it is up
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("Radicale did not start") from None
                time.sleep(0.02)
        self.reset_count()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> RadicaleServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    """A loopback port with nothing listening on it (for "server down" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class CalendarWriter:
    """Writes iCalendar resources straight into one Radicale calendar collection over HTTP."""

    def __init__(
        self, server: RadicaleServer, path: str, login: tuple[str, str] | None = None
    ) -> None:
        self.server = server
        self.login = login
        self.path = path if path.endswith("/") else path + "/"
        self.url = server.url.rstrip("/") + self.path

    def _send(self, method: str, url: str, body: bytes | None = None, **headers: str) -> int:
        if self.login is not None:
            token = base64.b64encode(f"{self.login[0]}:{self.login[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                status: int = reply.status
                return status
        except urllib.error.HTTPError as err:
            return err.code

    def create(self) -> CalendarWriter:
        """MKCOL the user's collection (if needed) and MKCALENDAR this calendar."""
        user_url = self.url.rsplit("/", 2)[0] + "/"
        self._send("MKCOL", user_url)
        status = self._send("MKCALENDAR", self.url)
        if status != 201:
            raise RuntimeError(f"MKCALENDAR {self.path} answered {status}")
        return self

    def put(self, name: str, ics: str) -> None:
        status = self._send(
            "PUT",
            self.url + name,
            ics.replace("\r\n", "\n").replace("\n", "\r\n").encode(),
            **{"Content-Type": "text/calendar; charset=utf-8"},
        )
        if status not in (201, 204):
            raise RuntimeError(f"PUT {name} answered {status}")

    def delete(self, name: str) -> None:
        status = self._send("DELETE", self.url + name)
        if status not in (200, 204):
            raise RuntimeError(f"DELETE {name} answered {status}")
