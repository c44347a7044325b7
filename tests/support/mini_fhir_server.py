"""A small but real FHIR R4 server over HTTP, for tests and benchmarks. Standard library only.

    python tests/support/mini_fhir_server.py --port P --bundle FILE [--token TOKEN]
                                             [--page-size N] [--delay-ms N] [--host H]

Serves the resources of one Bundle file (searchset or collection), read-only, from memory:
  GET /metadata              a minimal CapabilityStatement (no token needed)
  GET /{Type}/{id}           the resource, or 404 OperationOutcome
  GET /{Type}?patient=X      searchset Bundle, paged by --page-size (or _count) with absolute
                             `next` links (…&_page=2). `patient` (X or Patient/X) matches
                             subject/patient/beneficiary.reference == Patient/X, and for Patient
                             the id. Also: _id, status and category (comma = or), _count, _page. Any other
                             parameter is answered 400, so a template typo shows up in tests.
  GET /_stats                {"max_in_flight": n, "requests": count, "paths": [...]} (debug, no
                             token; `?reset=1` clears it after answering). /_stats itself is not
                             counted.
With --token, every other request needs `Authorization: Bearer TOKEN` (else 401 OperationOutcome).
--delay-ms adds latency to every FHIR answer. Nothing is written to disk; requests are not logged
unless --verbose. `--port 0` picks a free port. The first line on stdout is
"mini-fhir-server listening on http://HOST:PORT".
"""
from __future__ import annotations

import argparse
import hmac
import json
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import serve_until_terminated  # noqa: E402
from urllib.parse import parse_qs, quote, urlencode, urlsplit

_REFERENCE_FIELDS = ("subject", "patient", "beneficiary")
_KNOWN_PARAMS = {"patient", "subject", "_id", "status", "category", "_count", "_page", "_format"}
_PATHS_KEPT = 1000


class Store:
    """The resources of the Bundle, in file order, indexed by type and id."""

    def __init__(self, bundle: dict):
        if bundle.get("resourceType") != "Bundle":
            raise ValueError("the --bundle file must hold a FHIR Bundle")
        self.by_type: dict[str, list[dict]] = {}
        self.by_id: dict[tuple[str, str], dict] = {}
        for entry in bundle.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or "resourceType" not in resource:
                continue
            self.by_type.setdefault(resource["resourceType"], []).append(resource)
            if "id" in resource:
                self.by_id[(resource["resourceType"], resource["id"])] = resource

    def search(self, resource_type: str, params: dict[str, str]) -> list[dict]:
        found = self.by_type.get(resource_type, [])
        patient = params.get("patient") or params.get("subject")
        if patient is not None:
            pid = patient.split("/")[-1]
            found = [r for r in found if _belongs_to(r, pid)]
        if "_id" in params:
            ids = set(params["_id"].split(","))
            found = [r for r in found if r.get("id") in ids]
        if "status" in params:
            wanted = set(params["status"].split(","))
            found = [r for r in found if r.get("status") in wanted]
        if "category" in params:
            wanted = set(params["category"].split(","))
            found = [r for r in found if wanted & _category_codes(r)]
        return found


def _category_codes(resource: dict) -> set[str]:
    concepts = resource.get("category")
    concepts = concepts if isinstance(concepts, list) else [concepts]
    return {c.get("code") for concept in concepts if isinstance(concept, dict)
            for c in concept.get("coding") or () if isinstance(c, dict)}


def _belongs_to(resource: dict, patient_id: str) -> bool:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient_id
    for name in _REFERENCE_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and ref.get("reference") == f"Patient/{patient_id}":
            return True
    return False


def outcome(severity: str, code: str, text: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.paths: list[str] = []

    def enter(self, path: str) -> None:
        with self.lock:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.paths.append(path)
            del self.paths[:-_PATHS_KEPT]

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def snapshot(self, reset: bool) -> dict:
        with self.lock:
            snap = {"max_in_flight": self.max_in_flight, "requests": self.requests, "paths": list(self.paths)}
            if reset:
                self.max_in_flight, self.requests, self.paths = self.in_flight, 0, []
            return snap


class FhirHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mini-fhir-server/1"
    server: MiniFhirServer

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/_stats":
            reset = parse_qs(parts.query).get("reset", ["0"])[0] in ("1", "true")
            return self._send(200, self.server.stats.snapshot(reset), content_type="application/json")
        self.server.stats.enter(self.path)
        try:
            if self.server.delay_s:
                time.sleep(self.server.delay_s)
            self._answer(parts.path, parts.query)
        finally:
            self.server.stats.leave()

    def _not_allowed(self):
        self._send(405, outcome("error", "not-supported", f"{self.command} is not supported; this server is read-only"))

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _answer(self, path: str, query: str) -> None:
        segments = [s for s in path.split("/") if s]
        if segments == ["metadata"]:
            return self._send(200, self.server.capability_statement())
        if not self._authorized():
            return self._send(
                401,
                outcome("error", "login", "a valid 'Authorization: Bearer' token is required"),
                headers={"WWW-Authenticate": 'Bearer realm="mini-fhir-server"'},
            )
        if len(segments) == 2:
            resource = self.server.store.by_id.get((segments[0], segments[1]))
            if resource is None:
                return self._send(404, outcome("error", "not-found", f"Resource {segments[0]}/{segments[1]} is not known"))
            return self._send(200, resource)
        if len(segments) == 1 and segments[0][:1].isupper():
            return self._search(segments[0], query)
        return self._send(404, outcome("error", "not-found", f"Unknown path {path}"))

    def _search(self, resource_type: str, query: str) -> None:
        raw = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(raw) - _KNOWN_PARAMS)
        if unknown:
            return self._send(400, outcome("error", "not-supported", f"Unknown search parameter(s): {', '.join(unknown)}"))
        params = {name: values[-1] for name, values in raw.items()}
        try:
            page = max(1, int(params.get("_page", "1")))
            size = max(1, int(params.get("_count", self.server.page_size)))
        except ValueError:
            return self._send(400, outcome("error", "invalid", "_page and _count must be integers"))
        found = self.server.store.search(resource_type, params)
        chunk = found[(page - 1) * size: page * size]
        kept = [(k, v) for k, v in raw.items() if k != "_page"]
        base_query = urlencode([(k, v) for k, values in kept for v in values], quote_via=quote)

        def page_url(n: int) -> str:
            q = f"{base_query}&_page={n}" if base_query else f"_page={n}"
            return f"{self.server.base_url}/{resource_type}?{q}"

        links = [{"relation": "self", "url": page_url(page)}]
        if page * size < len(found):
            links.append({"relation": "next", "url": page_url(page + 1)})
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{self.server.base_url}/{r['resourceType']}/{r.get('id', '')}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in chunk
            ],
        }
        self._send(200, bundle)

    def _authorized(self) -> bool:
        token = self.server.token
        if not token:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    def _send(self, status: int, body: dict, *, content_type: str = "application/fhir+json", headers=None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True


class MiniFhirServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store: Store, *, token=None, page_size=50, delay_ms=0, verbose=False):
        super().__init__(address, FhirHandler)
        self.store = store
        self.token = token
        self.page_size = page_size
        self.delay_s = delay_ms / 1000.0
        self.verbose = verbose
        self.stats = Stats()
        host, port = self.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    def capability_statement(self) -> dict:
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2024-01-01",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": t,
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [{"name": "patient", "type": "reference"}, {"name": "status", "type": "token"}, {"name": "category", "type": "token"}],
                        }
                        for t in sorted(self.store.by_type)
                    ],
                }
            ],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one FHIR Bundle read-only over HTTP (tests only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--bundle", required=True, help="JSON file holding a Bundle")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=0, help="latency added to every FHIR answer")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)

    with open(args.bundle, encoding="utf-8") as fh:
        store = Store(json.load(fh))
    server = MiniFhirServer(
        (args.host, args.port), store, token=args.token, page_size=max(1, args.page_size), delay_ms=args.delay_ms,
        verbose=args.verbose,
    )
    return serve_until_terminated(server, f"mini-fhir-server listening on {server.base_url}")


if __name__ == "__main__":
    sys.exit(main())
