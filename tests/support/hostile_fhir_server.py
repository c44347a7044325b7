"""A FHIR server that attacks its client, for tests/test_attacks.py. Standard library only.

    python tests/support/hostile_fhir_server.py --port P --bundle FILE [--other URL] [--host H]

    GET /{mode}/{Type}/{id}   read        GET /{mode}/{Type}?...   search

Every answer is built from the Bundle FILE, ignoring the search parameters (a careless or hostile
server: whatever patient was asked for, it sends the resources it has; a read of any Patient gets
the Bundle's Patient). Modes:
  ok               the data
  stall            accepts the request and never answers
  trickle-headers  the status line, then one header byte every 0.2 s, never finishing the headers
  trickle-body     headers at once (Content-Length of the data), then the body one byte every 0.2 s
  redirect-port    302 to the same path on --other (another server, another port)
  redirect-path    302 to /elsewhere/... on this server (outside the base the client was given)
  next-path        page 1 is the data with a `next` link to /elsewhere/... on this server
  elsewhere        the data (a client that keeps inside its base never gets here)
  echo-outcome     500 with an OperationOutcome quoting the chart (names, MRN, birth date)

  GET /_log        JSON list of {"path", "authorization"} of every request so far (`?reset=1` clears)

Stopped by SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import serve_until_terminated  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "HostileServer"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/_log":
            body = json.dumps(self.server.snapshot(reset="reset" in parse_qs(parts.query))).encode()
            return self._send(200, body, "application/json")
        self.server.record(self.path, self.headers.get("Authorization"))
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) < 2:
            return self._send(404, b"{}")
        mode, fhir = segments[0], segments[1:]
        data = json.dumps(self.server.answer(fhir, parts.query)).encode()
        if mode in ("ok", "elsewhere"):
            return self._send(200, data)
        if mode == "stall":
            self.server.stopping.wait(120)
            self.close_connection = True
            return None
        if mode == "trickle-headers":
            self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nX-Padding: " + b"a" * 100_000)
            return None
        if mode == "trickle-body":
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self._drip(data)
            return None
        if mode in ("redirect-port", "redirect-path"):
            target = (self.server.other if mode == "redirect-port" else "") + "/elsewhere/" + "/".join(fhir)
            target += f"?{parts.query}" if parts.query else ""
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if mode == "next-path":
            page = self.server.answer(fhir, parts.query)
            if page.get("resourceType") == "Bundle":
                page = {**page, "entry": [], "link": [{"relation": "next", "url": "/elsewhere/" + "/".join(fhir)}]}
            return self._send(200, json.dumps(page).encode())
        if mode == "echo-outcome":
            return self._send(500, json.dumps({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "exception", "diagnostics": self.server.chart_text()}]}).encode())
        return self._send(404, b"{}")

    def _send(self, status: int, body: bytes, content_type: str = "application/fhir+json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, data: bytes) -> None:
        try:
            for i in range(len(data)):
                if self.server.stopping.wait(0.2):
                    break
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, resources: list[dict], other: str):
        super().__init__(address, Handler)
        self.resources, self.other = resources, other.rstrip("/")
        self.stopping = threading.Event()
        self._log: list[dict] = []
        self._lock = threading.Lock()

    def answer(self, fhir: list[str], query: str) -> dict:
        rtype = fhir[0]
        matching = [r for r in self.resources if r.get("resourceType") == rtype]
        if len(fhir) >= 2 and not query:
            return matching[0] if matching else {"resourceType": "OperationOutcome", "issue": []}
        return {"resourceType": "Bundle", "type": "searchset", "total": len(matching),
                "entry": [{"resource": r, "search": {"mode": "match"}} for r in matching]}

    def chart_text(self) -> str:
        patient = next((r for r in self.resources if r.get("resourceType") == "Patient"), {})
        name = (patient.get("name") or [{}])[0]
        return (f"patient {' '.join(name.get('given', []))} {name.get('family', '')} "
                f"MRN {(patient.get('identifier') or [{}])[0].get('value', '')} born {patient.get('birthDate', '')}")

    def record(self, path: str, authorization: str | None) -> None:
        with self._lock:
            self._log.append({"path": path, "authorization": authorization})

    def snapshot(self, reset: bool) -> list[dict]:
        with self._lock:
            log = list(self._log)
            if reset:
                self._log.clear()
        return log

    def server_close(self):
        self.stopping.set()
        super().server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--other", default="http://127.0.0.1:9")
    args = parser.parse_args(argv)
    bundle = json.loads(args.bundle.read_text("utf-8"))
    resources = [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    server = HostileServer((args.host, args.port), resources, args.other)
    server.stopping.clear()
    return serve_until_terminated(server, f"hostile-fhir-server listening on http://{args.host}:{args.port}")


if __name__ == "__main__":
    sys.exit(main())
