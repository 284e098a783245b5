"""A local HTTP server thread for the web-download tests, and the import task run in process (as the
control worker runs it: the task by name with the kwargs its record holds)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class WebServer:
    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def web_server() -> Iterator[WebServer]:
    """Serves ``routes`` (path -> (status, headers, body)); the body in 64 KiB writes."""
    box: dict[str, WebServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = box["server"]
            server.hits.append(self.path)
            status, headers, body = server.routes.get(self.path, (404, {}, b"no such thing"))
            self.send_response(status)
            headers = {"Content-Length": str(len(body)), **headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            try:
                for start in range(0, len(body), 65536):
                    self.wfile.write(body[start:start + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    box["server"] = WebServer(port=httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield box["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_web_downloads() -> list[str]:
    """Every web-download task enqueued and not run yet, in process, in order; their results."""
    from apps.core.models import TaskRecord
    from apps.images.services.data import WEB_DOWNLOAD_TASK
    from workers import images

    results = []
    for record in TaskRecord.objects.filter(name=WEB_DOWNLOAD_TASK, status="pending").order_by("created_at"):
        TaskRecord.objects.filter(pk=record.pk).update(status="succeeded")
        results.append(images.web_download(**record.kwargs))
    return results
