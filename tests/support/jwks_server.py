"""A tiny HTTP server publishing a JWK Set from a file, for the client-JWT tests. Standard library only.

    python tests/support/jwks_server.py --port P --file JWKS.json [--host H]

  GET /_stats      {"requests": n, "paths": [...]}: the requests served so far (itself not counted);
                   `?reset=1` clears them after answering.
  GET any path     the file's current content as application/json (read on every request, so a test
                   rotates keys by rewriting the file; write it atomically with os.replace).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import serve_until_terminated  # noqa: E402
from urllib.parse import parse_qs, urlsplit


class JwksHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: JwksServer

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/_stats":
            reset = parse_qs(parts.query).get("reset", ["0"])[0] in ("1", "true")
            with self.server.lock:
                body = json.dumps({"requests": len(self.server.paths), "paths": list(self.server.paths)}).encode()
                if reset:
                    self.server.paths.clear()
            return self._send(200, body)
        with self.server.lock:
            self.server.paths.append(self.path)
        try:
            with open(self.server.file, "rb") as fh:
                body = fh.read()
        except OSError:
            return self._send(404, b'{"error": "no JWKS file"}')
        self._send(200, body)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class JwksServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, file: str):
        super().__init__(address, JwksHandler)
        self.file = file
        self.lock = threading.Lock()
        self.paths: list[str] = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a JWK Set file over HTTP (tests only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True, help="JSON file holding the JWK Set; re-read on every request")
    args = parser.parse_args(argv)
    server = JwksServer((args.host, args.port), args.file)
    return serve_until_terminated(server, f"jwks-server listening on http://{args.host}:{server.server_address[1]}")


if __name__ == "__main__":
    sys.exit(main())
