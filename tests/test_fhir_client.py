"""FhirClient against a tiny in-process HTTP server: the happy path and every error path.

Each failure must come out as FhirFetchError with a reason naming the problem (and never the
token), not as a requests/urllib3/JSON exception.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cds_service.fhir_client import FhirClient, FhirFetchError
from tests.support.servers import free_port

TOKEN = "s3cret-token-value"
FAST = {"timeout": (0.3, 0.3)}


def bundle(*ids, next_url=None, self_url=None, resource_type="Condition"):
    links = []
    if self_url:
        links.append({"relation": "self", "url": self_url})
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": {"resourceType": resource_type, "id": i}, "search": {"mode": "match"}} for i in ids],
    }


def outcome(text, severity="error"):
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": "processing", "diagnostics": text}]}


class Reply:
    """What the fake server answers on one path (query included)."""

    def __init__(self, status=200, body=None, *, raw=None, headers=None, delay=0.0, no_length=False):
        self.status = status
        self.data = raw if raw is not None else json.dumps(body).encode()
        self.headers = {"Content-Type": "application/fhir+json", **(headers or {})}
        self.delay = delay
        self.no_length = no_length


class FakeFhir:
    """A threaded HTTP server on 127.0.0.1 serving `routes` and recording each request."""

    def __init__(self):
        self.routes: dict[str, Reply | object] = {}
        self.requests: list[tuple[str, dict]] = []
        self.release = threading.Event()  # wakes up sleeping handlers at teardown
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                reply = fake.routes.get(self.path)
                if callable(reply):
                    reply = reply(self)
                if reply is None:
                    reply = Reply(404, outcome(f"no route {self.path}"))
                if reply.delay:
                    fake.release.wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.no_length:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    else:
                        self.send_header("Content-Length", str(len(reply.data)))
                    self.end_headers()
                    self.wfile.write(reply.data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"{self.base}/{path}"

    def route(self, path, reply):
        self.routes[f"/fhir/{path}"] = reply

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake():
    server = FakeFhir()
    yield server
    server.close()


@pytest.fixture
def client():
    with FhirClient(**FAST) as c:
        yield c


# -- happy paths -------------------------------------------------------------------------------
def test_search_follows_next_links_relative_to_the_base_and_sends_the_token(fake, client):
    fake.route("Condition?patient=pat-1", Reply(body=bundle("c1", "c2", next_url="Condition?patient=pat-1&page=2")))
    fake.route("Condition?patient=pat-1&page=2", Reply(body=bundle("c3", next_url=fake.url("Condition?patient=pat-1&page=3"))))
    fake.route("Condition?patient=pat-1&page=3", Reply(body=bundle("c4")))

    found = client.search(fake.url("Condition?patient=pat-1"), access_token=TOKEN, base=fake.base)

    assert [r["id"] for r in found] == ["c1", "c2", "c3", "c4"]
    assert [path for path, _ in fake.requests] == [
        "/fhir/Condition?patient=pat-1",
        "/fhir/Condition?patient=pat-1&page=2",
        "/fhir/Condition?patient=pat-1&page=3",
    ]
    for _, headers in fake.requests:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Accept"] == "application/fhir+json"


def test_search_skips_outcome_entries_that_are_not_errors(fake, client):
    page = bundle("c1")
    page["entry"].append({"resource": outcome("2 results", severity="information"), "search": {"mode": "outcome"}})
    fake.route("Condition?patient=pat-1", Reply(body=page))
    assert [r["id"] for r in client.search(fake.url("Condition?patient=pat-1"))] == ["c1"]


def test_no_token_means_no_authorization_header(fake, client):
    fake.route("Patient/pat-1", Reply(body={"resourceType": "Patient", "id": "pat-1"}))
    assert client.read(fake.url("Patient/pat-1")) == {"resourceType": "Patient", "id": "pat-1"}
    (_, headers), = fake.requests
    assert "Authorization" not in headers


def test_follow_reads_only_the_pages_after_a_prefetched_first_page(fake, client):
    first = bundle("c1", next_url=fake.url("Condition?patient=pat-1&page=2"), self_url=fake.url("Condition?patient=pat-1"))
    fake.route("Condition?patient=pat-1&page=2", Reply(body=bundle("c2")))
    rest = client.follow(first, base=fake.base, access_token=TOKEN)
    assert [r["id"] for r in rest] == ["c2"]
    assert [path for path, _ in fake.requests] == ["/fhir/Condition?patient=pat-1&page=2"]


# -- error paths -------------------------------------------------------------------------------
def _loop_routes(fake):
    fake.route("Condition?patient=pat-1", Reply(body=bundle("c1", next_url=fake.url("Condition?patient=pat-1&page=2"))))
    fake.route("Condition?patient=pat-1&page=2", Reply(body=bundle("c2", next_url=fake.url("Condition?patient=pat-1"))))


def _endless_routes(fake):
    fake.route("Condition?patient=pat-1", Reply(body=bundle("c0", next_url=fake.url("Condition?patient=pat-1&page=1"))))
    for n in range(1, 10):
        fake.route(f"Condition?patient=pat-1&page={n}", Reply(body=bundle(f"c{n}", next_url=fake.url(f"Condition?patient=pat-1&page={n + 1}"))))


def _echo_token(handler):  # a careless server that puts the Authorization header in its diagnostics
    return Reply(401, outcome(f"bad credentials: {handler.headers.get('Authorization')}"))


SERVER_TEXT = ("token expired", "bad credentials", "scope patient", "no route", "text/html", "search too costly",
               "index unavailable", "evil.test", "Patient where")

ERROR_CASES = {
    "401 with an OperationOutcome": (
        lambda f: f.route("Condition?patient=pat-1", Reply(401, outcome("token expired"))),
        {}, ["HTTP 401", "access token"], 401,
    ),
    "401 echoing the token": (
        lambda f: f.route("Condition?patient=pat-1", _echo_token), {}, ["HTTP 401"], 401,
    ),
    "403": (
        lambda f: f.route("Condition?patient=pat-1", Reply(403, outcome("scope patient/Condition.read missing"))),
        {}, ["HTTP 403"], 403,
    ),
    "404 with an OperationOutcome": (
        lambda f: None, {}, ["HTTP 404 Not Found"], 404,
    ),
    "500 without a body": (
        lambda f: f.route("Condition?patient=pat-1", Reply(500, raw=b"", headers={"Content-Type": "text/plain"})),
        {}, ["HTTP 500"], 500,
    ),
    "body that is not JSON": (
        lambda f: f.route("Condition?patient=pat-1", Reply(raw=b"<html>login</html>", headers={"Content-Type": "text/html"})),
        {}, ["not JSON"], None,
    ),
    "empty body": (lambda f: f.route("Condition?patient=pat-1", Reply(raw=b"")), {}, ["empty body"], None),
    "JSON that is not a resource": (
        lambda f: f.route("Condition?patient=pat-1", Reply(body=[{"id": "c1"}])), {}, ["not a FHIR resource"], None,
    ),
    "an OperationOutcome with 200": (
        lambda f: f.route("Condition?patient=pat-1", Reply(body=outcome("search too costly"))),
        {}, ["OperationOutcome"], None,
    ),
    "an error outcome entry in the searchset": (
        lambda f: f.route(
            "Condition?patient=pat-1",
            Reply(body={"resourceType": "Bundle", "type": "searchset",
                        "entry": [{"resource": outcome("index unavailable"), "search": {"mode": "outcome"}}]}),
        ),
        {}, ["error in the search results"], None,
    ),
    "a resource where a Bundle was expected": (
        lambda f: f.route("Condition?patient=pat-1", Reply(body={"resourceType": "Patient", "id": "p"})),
        {}, ["not a search Bundle"], None,
    ),
    "a next-link loop": (_loop_routes, {}, ["loops back"], None),
    "more pages than max_pages": (_endless_routes, {"max_pages": 3}, ["more than 3 pages", "max_pages"], None),
    "a next link to another server": (
        lambda f: f.route("Condition?patient=pat-1", Reply(body=bundle("c1", next_url="http://evil.test/fhir/Condition?page=2"))),
        {}, ["outside the FHIR server's base URL", "not followed"], None,
    ),
    "an answer bigger than max_bytes (Content-Length)": (
        lambda f: f.route("Condition?patient=pat-1", Reply(body=bundle(*[f"c{i}" for i in range(200)]))),
        {"max_bytes": 1000}, ["more than 1000 bytes", "max_bytes"], None,
    ),
    "an answer bigger than max_bytes (no Content-Length)": (
        lambda f: f.route("Condition?patient=pat-1", Reply(body=bundle(*[f"c{i}" for i in range(200)]), no_length=True)),
        {"max_bytes": 1000}, ["more than 1000 bytes"], None,
    ),
    "pages together bigger than max_bytes": (
        lambda f: (
            f.route("Condition?patient=pat-1", Reply(body=bundle(*[f"c{i}" for i in range(8)], next_url=f.url("Condition?patient=pat-1&page=2")))),
            f.route("Condition?patient=pat-1&page=2", Reply(body=bundle(*[f"d{i}" for i in range(8)]))),
        ),
        {"max_bytes": 600}, ["more than 600 bytes"], None,
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
def test_search_failures_are_fhir_fetch_errors_naming_the_problem(fake, case):
    setup, settings, expected, status = ERROR_CASES[case]
    setup(fake)
    with FhirClient(**FAST, **settings) as client, pytest.raises(FhirFetchError) as caught:
        client.search(fake.url("Condition?patient=pat-1"), access_token=TOKEN, base=fake.base)
    err = caught.value
    for text in expected:
        assert text in err.reason
    assert err.status == status
    assert str(err) == f"the FHIR server {err.reason}"
    assert TOKEN not in str(err)
    # Never the server's own words (an OperationOutcome can carry names and MRNs; the URL could be anyone's).
    for quoted in SERVER_TEXT:
        assert quoted not in err.reason


def test_evil_next_link_is_never_requested(fake, client):
    other = FakeFhir()
    try:
        fake.route("Condition?patient=pat-1", Reply(body=bundle("c1", next_url=other.url("Condition?page=2"))))
        with pytest.raises(FhirFetchError, match="outside the FHIR server's base URL"):
            client.search(fake.url("Condition?patient=pat-1"), access_token=TOKEN, base=fake.base)
    finally:
        other.close()
    assert other.requests == []  # so it never saw the token


def test_read_timeout(fake, client):
    fake.route("Patient/pat-1", Reply(body={"resourceType": "Patient", "id": "pat-1"}, delay=5.0))
    # Three attempts of 0.3 s each (two retries) meet the call's deadline (0.3 + 3 x 0.3 s).
    with pytest.raises(FhirFetchError, match=r"timed out after \d+\.\d s \(read timeout 0\.3 s per attempt\)"
                                              r"|within the call's deadline \(1\.2 s"):
        client.read(fake.url("Patient/pat-1"), access_token=TOKEN)


def test_503_is_retried_twice_then_reported(fake, client):
    fake.route("Patient/pat-1", Reply(503, outcome("maintenance")))
    with pytest.raises(FhirFetchError, match="HTTP 503 Service Unavailable") as caught:
        client.read(fake.url("Patient/pat-1"))
    assert caught.value.status == 503
    assert len(fake.requests) == 3


def test_500_is_not_retried(fake, client):
    fake.route("Patient/pat-1", Reply(500, outcome("NullPointerException")))
    with pytest.raises(FhirFetchError, match="HTTP 500 Internal Server Error$"):
        client.read(fake.url("Patient/pat-1"))
    assert len(fake.requests) == 1


def test_connection_refused(client):
    port = free_port()  # nothing listens there
    with pytest.raises(FhirFetchError, match=r"could not be reached \(connection refused\)"):
        client.read(f"http://127.0.0.1:{port}/fhir/Patient/pat-1", access_token=TOKEN)


def test_unusable_url(client):
    with pytest.raises(FhirFetchError, match="could not be reached"):
        client.read("ftp://example.test/fhir/Patient/1")


def test_default_settings():
    with FhirClient() as c:
        assert (c.timeout, c.max_pages, c.max_bytes, c.max_workers) == ((2.0, 5.0), 20, 20_000_000, 8)
        assert c.retry.total == 2 and set(c.retry.status_forcelist) == {502, 503, 504}
        assert c.retry.allowed_methods == frozenset({"GET"}) and c.retry.raise_on_status is False


def test_a_calls_byte_budget_gives_up_the_biggest_body_not_the_small_one_that_crossed_the_line():
    from cds_service.fhir_client import CallBudget, _TooLarge
    budget = CallBudget(5, 1000)
    huge, small = object(), object()
    budget.take(huge, 900)
    budget.take(small, 200)            # crosses the line, but the huge body is the one given up
    with pytest.raises(_TooLarge):
        budget.take(huge, 1)
    budget.done(huge, kept=False)      # its bytes are given back
    budget.done(small, kept=True)
    big, last = object(), object()
    budget.take(big, 700)              # 200 kept + 700 fit
    budget.take(last, 200)             # over again: `big`, the biggest still being read, is given up
    with pytest.raises(_TooLarge):
        budget.take(big, 1)
    budget.done(big, kept=False)
    with pytest.raises(_TooLarge):     # alone and over the line: the reader itself is given up
        budget.take(last, 700)


def test_searches_ask_for_strict_handling_and_reads_do_not(fake, client):
    fake.route("Condition?patient=pat-1", Reply(body=bundle("c1")))
    fake.route("Patient/pat-1", Reply(body={"resourceType": "Patient", "id": "pat-1"}))
    client.search(fake.url("Condition?patient=pat-1"), base=fake.base)
    client.read(fake.url("Patient/pat-1"), base=fake.base)
    (_, search_headers), (_, read_headers) = fake.requests
    assert search_headers["Prefer"] == "handling=strict" and "Prefer" not in read_headers


WITHIN = {  # url -> inside the base http://h:8/fhir ?
    "http://h:8/fhir/Patient/1": True,
    "http://H:8/fhir/Condition?patient=1": True,
    "http://h:8/fhir": True,
    "http://h:8/fhirx/Patient/1": False,
    "http://h:8/other/Patient/1": False,
    "http://h:8/fhir/../admin": False,
    "http://h:8/fhir/%2e%2e/admin": False,
    "http://h:9/fhir/Patient/1": False,
    "https://h:8/fhir/Patient/1": False,
    "http://u:p@h:8/fhir/Patient/1": False,
    "http://g:8/fhir/Patient/1": False,
}


@pytest.mark.parametrize("url", list(WITHIN))
def test_within_the_base(url):
    from cds_service.fhir_client import within
    assert within("http://h:8/fhir", url) is WITHIN[url]


def test_a_redirect_inside_the_base_is_followed_with_the_token(fake, client):
    fake.route("Patient/pat-1", Reply(302, raw=b"", headers={"Location": fake.url("Patient/pat-1/_history/2")}))
    fake.route("Patient/pat-1/_history/2", Reply(body={"resourceType": "Patient", "id": "pat-1"}))
    assert client.read(fake.url("Patient/pat-1"), access_token=TOKEN, base=fake.base)["id"] == "pat-1"
    assert [h["Authorization"] for _, h in fake.requests] == [f"Bearer {TOKEN}"] * 2


def test_a_next_link_urlsplit_cannot_read_is_outside_the_base(fake, client):
    fake.route("Condition?patient=pat-1", Reply(body=bundle("c1", next_url="http://[::1/fhir/Condition?page=2")))
    with pytest.raises(FhirFetchError, match="outside the FHIR server's base URL"):
        client.search(fake.url("Condition?patient=pat-1"), base=fake.base)
