"""The dashboard's HTTP server (standard library): one page and its JSON API, on 127.0.0.1.

    GET /                          the page (HTML, CSS and JS inline; nothing from the network)
    GET /api/countries             overview: every country's totals, their sum, the daily series
    GET /api/countries/<country>   one country: totals, top 3 products, daily series
                                   (<country> percent-encoded UTF-8: /api/countries/United%20Kingdom)

Every answer but the page is JSON, errors included (``{"error": "...", "status": 404}``):
an unknown country is a 404 naming it, a warehouse that cannot answer a 503 with its
reason, anything unexpected a 500 whose details go to the log, never to the client.
Requests whose Host is not this machine's loopback address are refused (403), so a web
page elsewhere cannot read the warehouse through a DNS name pointed at 127.0.0.1.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack.dashboard.data import BadRequest, Dashboard, DashboardError

HOST = "127.0.0.1"
DEFAULT_PORT = 8090
PAGE = Path(__file__).with_name("page.html")
DATA_SLOT = "__DASHBOARD_DATA__"
API_PREFIX = "/api/countries"


def page(data: Any = None) -> str:
    """The page; with ``data`` (a :meth:`Dashboard.snapshot`) embedded, it needs no server."""
    template = PAGE.read_text(encoding="utf-8")
    if template.count(DATA_SLOT) != 1:
        raise RuntimeError(f"{PAGE} must hold {DATA_SLOT} exactly once")
    return template.replace(DATA_SLOT, _script_json(data))


def _script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' outside escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_static(dashboard: Dashboard, path: str | Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Write a self-contained snapshot of the dashboard (data embedded) to ``path``."""
    snapshot = dashboard.snapshot(progress=progress)
    snapshot["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page(snapshot), encoding="utf-8")
    return target


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "shopstream-dashboard"
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is closed after this many seconds

    # ---- routes -------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        started = time.monotonic()
        status = self._answer()
        self.server.log(f"GET {self.path} {status} {1000 * (time.monotonic() - started):.0f} ms")

    def _answer(self) -> int:
        try:
            if not self._host_allowed():
                raise _Forbidden(f"Host {self.headers.get('Host')!r} is not this dashboard's address")
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                return self._send(200, page().encode("utf-8"), "text/html; charset=utf-8")
            if path == API_PREFIX or path == API_PREFIX + "/":
                return self._json(200, self.server.dashboard.overview())
            if path.startswith(API_PREFIX + "/") and "/" not in path[len(API_PREFIX) + 1:]:
                return self._json(200, self.server.dashboard.country(_country(path[len(API_PREFIX) + 1:])))
            return self._json(404, {"error": f"no such page: {path}", "status": 404,
                                    "endpoints": ["/", API_PREFIX, API_PREFIX + "/<country>"]})
        except DashboardError as exc:
            return self._json(exc.status, exc.to_dict())
        except (BrokenPipeError, ConnectionResetError):
            return 499  # the client went away
        except Exception as exc:  # noqa: BLE001 — the one place a request's failure becomes a 500
            self.server.log(f"GET {self.path} failed:\n{traceback.format_exc()}", error=True)
            return self._json(500, {"error": f"internal error ({type(exc).__name__}); see the dashboard's log",
                                    "status": 500})

    def do_HEAD(self) -> None:  # noqa: N802
        self._refuse_method()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD  # noqa: N815

    def _refuse_method(self) -> None:
        self.close_connection = True  # a body it may have sent is not read
        self._json(405, {"error": f"{self.command} is not supported: the dashboard only answers GET", "status": 405},
                   extra={"Allow": "GET", "Connection": "close"})

    # ---- responses ------------------------------------------------------------------------

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.server.server_address[1]
        return host in {f"127.0.0.1:{port}", f"localhost:{port}"} or (port == 80 and host in {"127.0.0.1", "localhost"})

    def _json(self, status: int, body: Any, extra: dict[str, str] | None = None) -> int:
        data = json.dumps(body, ensure_ascii=False, indent=None).encode("utf-8")
        return self._send(status, data, "application/json; charset=utf-8", extra)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> int:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return 499
        return status

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own errors (a malformed request, a line too long) as JSON too."""
        try:
            reason = message or HTTPStatus(code).phrase
        except ValueError:
            reason = message or "error"
        self.close_connection = True
        self._json(code, {"error": reason, "status": code}, extra={"Connection": "close"})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — requests are logged by do_GET
        pass


class _Forbidden(DashboardError):
    status = 403


def _country(segment: str) -> str:
    try:
        return unquote(segment, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the country in the path is not percent-encoded UTF-8: {segment!r}") from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, dashboard: Dashboard, log: Callable[[str], None] | None):
        self.dashboard = dashboard
        self._log = log
        super().__init__((HOST, port), _Handler)

    def log(self, line: str, *, error: bool = False) -> None:
        if error:
            print(line, file=sys.stderr, flush=True)
        elif self._log is not None:
            self._log(line)


class DashboardServer:
    """The dashboard served on 127.0.0.1:``port`` (0: any free port; see :attr:`url`).

    ``serve_forever()`` blocks (Ctrl-C ends it); ``start()`` serves from a background
    thread and ``stop()`` ends it; as a context manager it does both."""

    def __init__(self, dashboard: Dashboard, port: int = DEFAULT_PORT, *, log: Callable[[str], None] | None = None):
        self._server = _Server(port, dashboard, log)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"dashboard:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
