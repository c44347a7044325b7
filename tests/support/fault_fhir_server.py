"""A FHIR R4 server over HTTP that misbehaves on purpose, for fault tests. Standard library only.

    python tests/support/fault_fhir_server.py --port P --bundle FILE [--host H] [--slow-seconds S]

The first two path segments choose the fault; the rest is an ordinary FHIR path:

    GET /{mode}/{scope}/{Type}/{id}        read
    GET /{mode}/{scope}/{Type}?patient=X   search (searchset of the matching resources of the Bundle file)

so a CDS request with `"fhirServer": "http://127.0.0.1:P/http-500/Observation,DiagnosticReport"`
gets HTTP 500 for its Observation and DiagnosticReport queries and good data for the others.
`scope` is `all` or a comma-separated list of resource types.

Modes (what a faulty query gets):
  ok                 the data, as a well-behaved server would send it
  slow               nothing for --slow-seconds (default 5), then the data
  trickle            headers at once, then the body one byte every 0.2 s (never a pause long enough
                     for a read timeout; only a total deadline stops it)
  http-401           401 with an OperationOutcome that echoes the bearer token (a careless server)
  http-403, http-404, http-500
                     that status with an OperationOutcome
  not-json           200, Content-Type application/fhir+json, an HTML page
  json-not-resource  200, a JSON array
  not-bundle         200, a Patient resource where a search Bundle is expected (reads get the data)
  garbage-entries    200, a searchset whose entries are not resources (numbers, strings, null,
                     objects without resourceType); reads get the data
  outcome            200, an OperationOutcome (error) instead of data
  outcome-entry      200, a searchset holding an error OperationOutcome entry besides the data
  next-loop          200, a searchset whose `next` link leads to page 2, whose `next` leads back to page 1
  huge               200, a 50 MB searchset (a Patient for reads) streamed in 64 KiB chunks without
                     Content-Length; nothing is built in memory beyond one chunk

  GET /metadata      a CapabilityStatement (readiness)
  GET /_log          JSON list of {"path", "authorization"} of every FHIR request so far (`?reset=1` clears)

Stopped by SIGTERM. Nothing is written to disk.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mini_fhir_server import Store, outcome  # noqa: E402  (sibling module, run as a script)

HUGE_BYTES = 50 * 1024 * 1024
CHUNK = 64 * 1024
MODES = {"ok", "slow", "trickle", "http-401", "http-403", "http-404", "http-500", "not-json", "json-not-resource",
         "not-bundle", "garbage-entries", "outcome", "outcome-entry", "next-loop", "huge"}
GARBAGE_ENTRIES = [1, "entry", None, [], {"resource": 5}, {"resource": "Condition/1"}, {"resource": {"no": "type"}},
                   {"resource": {"resourceType": ["Condition"], "id": "c-list"}}, {"fullUrl": "urn:uuid:x"}]


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, format, *args):  # noqa: A002
        pass

    # -- plumbing -----------------------------------------------------------------------------
    def _send(self, status: int, body, *, raw: bytes | None = None, content_type: str = "application/fhir+json",
              headers: dict | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            self.close_connection = True

    def _stream(self, chunks) -> None:
        """200 with a body of unknown length (no Content-Length: read until the connection closes)."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a size cap or a deadline should do

    # -- routing --------------------------------------------------------------------------------
    def do_GET(self):
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        if segments == ["metadata"]:
            return self._send(200, {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                                    "fhirVersion": "4.0.1", "format": ["json"], "date": "2024-01-01"})
        if segments == ["_log"]:
            reset = parse_qs(parts.query).get("reset", ["0"])[0] in ("1", "true")
            return self._send(200, self.server.log_snapshot(reset), content_type="application/json")
        if len(segments) < 3 or segments[0] not in MODES:
            return self._send(404, outcome("error", "not-found", f"unknown path {parts.path}; see the module docstring"))
        mode, scope, fhir_path = segments[0], segments[1], segments[2:]
        self.server.record(self.path, self.headers.get("Authorization"))
        resource_type = fhir_path[0]
        faulty = scope == "all" or resource_type in scope.split(",")
        is_read = len(fhir_path) == 2
        handler = getattr(self, "_" + mode.replace("-", "_")) if faulty else self._ok
        handler(fhir_path, parts.query, is_read)

    # -- good data --------------------------------------------------------------------------------
    def _data(self, fhir_path: list[str], query: str, is_read: bool, *, next_url: str | None = None):
        """(status, body) a well-behaved server would answer."""
        if is_read:
            resource = self.server.store.by_id.get((fhir_path[0], fhir_path[1]))
            if resource is None:
                return 404, outcome("error", "not-found", f"{fhir_path[0]}/{fhir_path[1]} is not known")
            return 200, resource
        params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
        found = self.server.store.search(fhir_path[0], params)
        return 200, searchset(found, next_url=next_url)

    def _ok(self, fhir_path, query, is_read):
        status, body = self._data(fhir_path, query, is_read)
        self._send(status, body)

    # -- faults -----------------------------------------------------------------------------------
    def _slow(self, fhir_path, query, is_read):
        self.server.stopping.wait(self.server.slow_seconds)
        self._ok(fhir_path, query, is_read)

    def _trickle(self, fhir_path, query, is_read):
        _, body = self._data(fhir_path, query, is_read)
        data = json.dumps(body).encode()

        def bytes_slowly():  # the resource, then whitespace (still valid JSON) until the client hangs up
            i = 0
            while not self.server.stopping.wait(0.2):
                yield data[i:i + 1] if i < len(data) else b" "
                i += 1
        self._stream(bytes_slowly())

    def _status(self, status: int, code: str, text: str, headers=None) -> None:
        self._send(status, outcome("error", code, text), headers=headers)

    def _http_401(self, fhir_path, query, is_read):
        # A careless server that quotes the credentials it refused: the service must not repeat them.
        auth = self.headers.get("Authorization", "")
        self._status(401, "login", f"token rejected: {auth}", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _http_403(self, fhir_path, query, is_read):
        self._status(403, "forbidden", f"the token's scopes do not allow reading {fhir_path[0]}")

    def _http_404(self, fhir_path, query, is_read):
        self._status(404, "not-found", f"no such endpoint: {fhir_path[0]}")

    def _http_500(self, fhir_path, query, is_read):
        self._status(500, "exception", "NullPointerException at SearchController.java:42")

    def _not_json(self, fhir_path, query, is_read):
        self._send(200, None, raw=b"<html><body><h1>Sign in</h1><form>...</form></body></html>")

    def _json_not_resource(self, fhir_path, query, is_read):
        self._send(200, ["not", "a", {"FHIR": "resource"}])

    def _not_bundle(self, fhir_path, query, is_read):
        if is_read:
            return self._ok(fhir_path, query, is_read)
        self._send(200, {"resourceType": "Patient", "id": "pat-1"})

    def _garbage_entries(self, fhir_path, query, is_read):
        if is_read:
            return self._ok(fhir_path, query, is_read)
        self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(GARBAGE_ENTRIES),
                         "entry": GARBAGE_ENTRIES})

    def _outcome(self, fhir_path, query, is_read):
        self._send(200, outcome("error", "too-costly", "the search would take too long; narrow it"))

    def _outcome_entry(self, fhir_path, query, is_read):
        status, body = self._data(fhir_path, query, is_read)
        if status == 200 and not is_read:
            body["entry"].append({"resource": outcome("error", "processing", "some results could not be read"),
                                  "search": {"mode": "outcome"}})
        self._send(status, body)

    def _next_loop(self, fhir_path, query, is_read):
        if is_read:
            return self._ok(fhir_path, query, is_read)
        first = f"{self.server.base_url}{self.path}".replace("&_page=2", "")
        next_url = first if "_page=2" in self.path else first + "&_page=2"
        _, body = self._data(fhir_path, query, is_read, next_url=next_url)
        self._send(200, body)

    def _huge(self, fhir_path, query, is_read):
        def chunks():
            if is_read:
                head, tail = b'{"resourceType": "Patient", "id": "pat-1", "text": {"div": "', b'"}}'
                filler = b"x" * CHUNK
                separator = b""
            else:
                head, tail = b'{"resourceType": "Bundle", "type": "searchset", "entry": [', b"]}"
                entry = json.dumps({"resource": {"resourceType": fhir_path[0], "id": "big", "subject":
                                                 {"reference": "Patient/pat-1"}, "note": [{"text": "x" * 1000}]}}).encode()
                filler = b",".join([entry] * (CHUNK // (len(entry) + 1)))
                separator = b","
            yield head
            sent = len(head)
            first = True
            while sent < HUGE_BYTES:
                if self.server.stopping.is_set():
                    return
                piece = filler if first else separator + filler
                first = False
                yield piece
                sent += len(piece)
            yield tail
        self._stream(chunks())


def searchset(resources: list[dict], *, next_url: str | None = None) -> dict:
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
              "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store: Store, *, slow_seconds: float):
        super().__init__(address, FaultHandler)
        self.store = store
        self.slow_seconds = slow_seconds
        self.stopping = threading.Event()
        self._log: list[dict] = []
        self._lock = threading.Lock()
        host, port = self.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    def record(self, path: str, authorization: str | None) -> None:
        with self._lock:
            self._log.append({"path": path, "authorization": authorization})
            del self._log[:-1000]

    def log_snapshot(self, reset: bool) -> list[dict]:
        with self._lock:
            snapshot = list(self._log)
            if reset:
                self._log.clear()
            return snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A FHIR server that fails on purpose (tests only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bundle", required=True, help="JSON file holding a Bundle: the data of mode ok")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    with open(args.bundle, encoding="utf-8") as fh:
        store = Store(json.load(fh))
    server = FaultServer((args.host, args.port), store, slow_seconds=args.slow_seconds)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"fault-fhir-server listening on {server.base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping.set()  # wakes sleeping and streaming handlers
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
