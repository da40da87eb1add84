"""A real OpenLineage receiver on 127.0.0.1 for the tests: records every event POSTed to it.

``LineageServer`` runs ``http.server`` in a thread and keeps the bodies posted to
``/api/v1/lineage`` (the client's default endpoint) in arrival order.
:func:`refused_url` is an address where nothing listens (a port that was bound
and closed), for "the lineage server is down".
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LineageServer", "refused_url"]


class LineageServer:
    def __init__(self, port: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received.paths.append(self.path)
                received.events.append(json.loads(body))
                self.send_response(201)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LineageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def refused_url() -> tuple[str, int]:
    """(a URL where nothing listens, its port): bind a port, close it, hand it out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}", port
