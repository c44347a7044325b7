"""HTTP client for the EHR's FHIR server (the `fhirServer` of a CDS Hooks request).

Plain dicts in, plain dicts out: no FHIR models here, big charts must stay cheap.

Thread safety: one `requests.Session` is shared by all threads of a client. That is safe for
what we do with it because nothing on the session changes after construction: the adapters are
mounted once, the access token travels in per-call headers (never on `session.headers`), and
cookies are refused (a cookie set for one user's request must never ride along on another
user's request). The urllib3 pool under the adapter is thread-safe and sized to `max_workers`,
so concurrent GETs each get their own connection.

Every failure of a fetch raises `FhirFetchError`, never a `requests`/`urllib3`/JSON exception.
Its `reason` is a short fixed phrase meant to follow "… at the FHIR server", e.g. "timed out after
5.0 s"; it never contains the access token nor any text the server sent.
"""
from __future__ import annotations

import http.cookiejar
from http import HTTPStatus
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_DIAGNOSTICS_LIMIT = 200  # characters of a client's prefetched OperationOutcome text we quote back to it


class FhirFetchError(Exception):
    """A FHIR read or search could not deliver usable data.

    `reason` completes a sentence such as "Condition search at the FHIR server <reason>". It is
    made of our own fixed phrases and numbers (status codes, seconds, bytes): never text the server
    sent (an OperationOutcome's diagnostics can hold names, MRNs and birth dates, and a caller could
    point fhirServer anywhere to read such text back from a card).
    `status` is the HTTP status when the server answered, else None.
    """

    def __init__(self, reason: str, *, status: int | None = None):
        super().__init__(f"the FHIR server {reason}")
        self.reason = reason
        self.status = status


class CallBudget:
    """What all FHIR fetching of one hook call may spend, retries included: seconds and bytes.

    Per-read timeouts alone never stop a server that sends its headers or body a few bytes at a
    time, so every GET of the call is also bounded by `expires`; `expire()` shuts down the sockets
    of the GETs still running (a server trickling its headers is stopped there too). Bytes are
    counted over every page of every query of the call, so memory is bounded per call, not per page.
    """

    def __init__(self, seconds: float, max_bytes: int):
        self.seconds = float(seconds)
        self.expires = time.monotonic() + self.seconds
        self.max_bytes = max_bytes
        self._used = 0
        self._reading: dict[object, int] = {}  # bodies being read -> bytes so far
        self._evicted: set[object] = set()
        self._lock = threading.Lock()
        self._sockets: set = set()
        self._expired = False

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def take(self, reader: object, size: int) -> None:
        """Count `size` more bytes read by `reader` (one GET's body). Past max_bytes the biggest body still
        being read is given up (_TooLarge, now or at its next read): one huge answer must not starve
        the small ones of the same call."""
        with self._lock:
            if reader in self._evicted:
                raise _TooLarge()
            self._reading[reader] = self._reading.get(reader, 0) + size
            self._used += size
            if self._used > self.max_bytes:
                biggest = max(self._reading, key=self._reading.get)
                self._evicted.add(biggest)
                if biggest is reader:
                    raise _TooLarge()

    def done(self, reader: object, *, kept: bool) -> None:
        """`reader` finished its body: its bytes stay counted when kept, else they are given back."""
        with self._lock:
            size = self._reading.pop(reader, 0)
            self._evicted.discard(reader)
            if not kept:
                self._used -= size

    def watch(self, sock) -> None:
        with self._lock:
            if not self._expired:
                self._sockets.add(sock)
                return
        _shutdown(sock)

    def unwatch(self, sock) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def expire(self) -> None:
        """Stop every GET of this call still waiting on its server."""
        with self._lock:
            self._expired = True
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# The budget of the GET running on this thread: the connections below hand it their socket.
_current = threading.local()


class _WatchedConnection:
    """Mixin for urllib3 connections: the socket waiting for an answer is watched by the call's budget."""

    def getresponse(self, *args, **kwargs):
        budget = getattr(_current, "budget", None)
        if budget is not None and self.sock is not None:
            budget.watch(self.sock)
            _current.sockets.append(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def default_retry() -> Retry:
    """Retries for idempotent GETs: connection errors, read timeouts and 502/503/504.

    A 500 is not retried (it is usually a bug that will repeat). Retry-After is honoured but
    capped at 1 s. FhirClient applies these settings itself, inside the call's deadline.
    """
    return Retry(
        total=2,
        backoff_factor=0.1,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        retry_after_max=1,
    )


_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
_TRANSIENT_GRACE = 0.2  # seconds: a retry with less time left than this could not finish


class FhirClient:
    """GETs FHIR resources and searchsets, following `next` links.

    One client can serve many hook calls: the FHIR base and the access token are per call.
    Settings:
      timeout      (connect, read) seconds for each HTTP attempt (never more than the call has left);
      max_pages    pages of one search, the first included; more is an error (an incomplete
                   chart must not pass for a complete one);
      max_bytes    bytes (decoded) that all GETs of one call may read together (CallBudget);
      max_workers  how many fetches callers may run at once (sizes the connection pool; the
                   prefetch hydrator bounds its thread pool with it);
      deadline     seconds all fetching of one call may take, retries included (CDS_FHIR_DEADLINE).
    Redirects and `next` links are followed only inside the FHIR base URL (same scheme, host and
    port, path under the base path), so the access token never leaves it.
    """

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (2.0, 5.0),
        max_pages: int = 20,
        max_bytes: int = 20_000_000,
        max_workers: int = 8,
        retry: Retry | None = None,
        deadline: float | None = None,
    ):
        if max_pages < 1 or max_bytes < 1 or max_workers < 1:
            raise ValueError("max_pages, max_bytes and max_workers must be at least 1")
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.deadline = float(deadline) if deadline is not None else self.timeout[0] + 3 * self.timeout[1]
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.max_workers = max_workers
        self.retry = retry if retry is not None else default_retry()
        session = requests.Session()
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        session.trust_env = False  # no proxy or .netrc credentials picked up from the environment
        adapter = _Adapter(max_retries=Retry(total=0, redirect=False, raise_on_status=False),
                           pool_connections=4, pool_maxsize=max_workers)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def budget(self) -> CallBudget:
        """A fresh budget for one hook call: `deadline` seconds and `max_bytes` bytes."""
        return CallBudget(self.deadline, self.max_bytes)

    # -- public API ------------------------------------------------------------------------
    def read(self, url: str, *, access_token: str | None = None, base: str | None = None,
             budget: CallBudget | None = None) -> dict:
        """GET one resource (absolute URL). Any resource but an OperationOutcome is data."""
        resource = self._get_resource(url, access_token, budget=budget or self.budget(), scope=base or url)
        return resource

    def search(self, url: str, *, access_token: str | None = None, base: str | None = None,
               budget: CallBudget | None = None) -> list[dict]:
        """GET a searchset (absolute URL) and every `next` page; returns the entry resources.

        Relative `next` links are resolved against `base` (the FHIR service base), or against
        the page's own URL when no base is given. Pages are followed only inside `base` (or the
        first page's origin when no base is given), so the token never leaves it.
        """
        budget = budget or self.budget()
        scope = base or _origin_url(url)
        bundle = self._get_resource(url, access_token, budget=budget, scope=scope, search=True)
        if bundle.get("resourceType") != "Bundle":
            raise self._fail("answered a resource that is not a search Bundle", access_token)
        return self._collect(bundle, url, access_token, base=base, seen={url}, budget=budget)

    def follow(self, bundle: dict, *, base: str, access_token: str | None = None,
               budget: CallBudget | None = None) -> list[dict]:
        """Resources of the pages after `bundle` (e.g. a prefetched first page with a `next` link).

        The entries of `bundle` itself are not returned: the caller already has them.
        """
        seen = {link for link in [bundle_link(bundle, "self")] if link}
        return self._collect(bundle, base, access_token, base=base, seen=seen, budget=budget or self.budget(),
                             first_page=False)

    # -- internals -------------------------------------------------------------------------
    def _collect(
        self,
        bundle: dict,
        url: str,
        token: str | None,
        *,
        base: str | None,
        seen: set[str],
        budget: CallBudget,
        first_page: bool = True,
    ) -> list[dict]:
        """Resources of `bundle` (unless not `first_page`) and of the pages its next links lead to."""
        resources = self._page_resources(bundle, token) if first_page else []
        scope = base or _origin_url(url)
        resolve_against = (base.rstrip("/") + "/") if base else url
        pages = 1
        while True:
            nxt = bundle_link(bundle, "next")
            if not nxt:
                return resources
            nxt = _join(resolve_against, nxt)
            if not within(scope, nxt):
                raise self._fail(
                    "returned a next link outside the FHIR server's base URL; "
                    "not followed, so the access token stays with the FHIR server",
                    token,
                )
            if nxt in seen:
                raise self._fail(f"returned a next link that loops back to a page already read (after page {pages})", token)
            if pages >= self.max_pages:
                raise self._fail(
                    f"has more than {self.max_pages} pages of results (max_pages); the rest was not read", token
                )
            seen.add(nxt)
            bundle = self._get_resource(nxt, token, budget=budget, scope=scope, search=True)
            pages += 1
            if bundle.get("resourceType") != "Bundle":
                raise self._fail(f"answered a resource that is not a search Bundle for page {pages}", token)
            resources.extend(self._page_resources(bundle, token))

    def _page_resources(self, bundle: dict, token: str | None) -> list[dict]:
        unusable = unusable_entries(bundle)
        if unusable:  # dropping them quietly would pass an incomplete chart for a complete one
            count = f"{len(unusable)} {'entry' if len(unusable) == 1 else 'entries'}"
            raise self._fail(f"answered a search Bundle with {count} that are not FHIR resources "
                             f"({'; '.join(unusable[:3])})", token)
        if any(_is_error_outcome(outcome) for outcome in bundle_outcomes(bundle)):
            raise self._fail("reported an error in the search results (an OperationOutcome of severity error)", token)
        return bundle_resources(bundle)

    def _get_resource(self, url: str, token: str | None, *, budget: CallBudget, scope: str,
                      search: bool = False) -> dict:
        """GET `url` (following redirects inside `scope`, retrying transient faults while the budget
        lasts); the resource. Raises FhirFetchError for anything unusable."""
        headers = {"Accept": FHIR_JSON}
        if search:
            headers["Prefer"] = "handling=strict"  # an unknown search parameter must fail, not be dropped
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        retries = redirects = 0
        while True:
            if budget.remaining() <= 0:
                raise self._fail(self._too_slow(budget, started), token)
            try:
                status, location, retry_after, body = self._get_once(url, headers, budget)
            except _TooLarge:
                raise self._fail(
                    f"sent more than {budget.max_bytes} bytes for this call (max_bytes); the rest was not read", token
                ) from None
            except _TooSlow:
                raise self._fail(self._too_slow(budget, started), token) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if budget.remaining() <= 0:
                    raise self._fail(self._too_slow(budget, started), token) from None
                if self._transient(exc) and retries < self._retry_total() and budget.remaining() > _TRANSIENT_GRACE:
                    retries += 1
                    self._pause(self._backoff(retries), budget)
                    continue
                raise self._fail(self._transport_reason(exc, time.monotonic() - started), token) from None
            if status in _REDIRECTS:
                target = _join(url, location or "")
                if not location or not within(scope, target):
                    raise self._fail(f"answered HTTP {status} with a redirect outside the FHIR server's base URL; "
                                     "not followed, so the access token stays with the FHIR server", token,
                                     status=status)
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise self._fail("redirected too many times", token, status=status)
                url = target
                continue
            if status in self.retry.status_forcelist and retries < self._retry_total() \
                    and budget.remaining() > _TRANSIENT_GRACE:
                retries += 1
                self._pause(min(retry_after if retry_after is not None else self._backoff(retries), 1.0), budget)
                continue
            if not 200 <= status < 300:
                raise self._fail(_status_reason(status), token, status=status)
            break
        log.debug("GET -> %s in %.0f ms", status, (time.monotonic() - started) * 1000)
        try:
            resource = orjson.loads(body)
        except orjson.JSONDecodeError:
            what = "an empty body" if not body.strip() else "a body that is not JSON"
            raise self._fail(f"answered HTTP {status} with {what}", token) from None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise self._fail("answered JSON that is not a FHIR resource (no resourceType)", token)
        if resource["resourceType"] == "OperationOutcome":
            raise self._fail("answered with an OperationOutcome instead of data", token)
        return resource

    def _get_once(self, url: str, headers: dict, budget: CallBudget) -> tuple[int, str | None, float | None, bytes]:
        """One HTTP attempt: (status, Location, Retry-After seconds, body of a 2xx answer)."""
        remaining = budget.remaining()
        timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
        _current.budget, _current.sockets = budget, []
        try:
            with self._session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False) as resp:
                status = resp.status_code
                if not 200 <= status < 300:  # the body is never read: nothing in it reaches a card or a log
                    return status, resp.headers.get("Location"), _retry_after(resp), b""
                return status, None, None, _read_capped(resp, budget)
        finally:
            for sock in _current.sockets:
                budget.unwatch(sock)
            _current.budget, _current.sockets = None, []

    def _retry_total(self) -> int:
        return int(self.retry.total or 0)

    def _backoff(self, attempt: int) -> float:
        return float(self.retry.backoff_factor or 0) * (2 ** (attempt - 1))

    @staticmethod
    def _pause(seconds: float, budget: CallBudget) -> None:
        time.sleep(max(0.0, min(seconds, budget.remaining() - _TRANSIENT_GRACE)))

    @staticmethod
    def _transient(exc: BaseException) -> bool:
        chain = list(_exception_chain(exc))
        return any(isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                                  urllib3.exceptions.ProtocolError, ConnectionError, TimeoutError)) for e in chain) \
            and not any(isinstance(e, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                                       requests.exceptions.InvalidSchema, ssl.SSLError)) for e in chain)

    def _too_slow(self, budget: CallBudget, started: float) -> str:
        return (f"did not complete its answer within the call's deadline ({budget.seconds:g} s for all FHIR "
                f"fetching, CDS_FHIR_DEADLINE; this query ran {time.monotonic() - started:.1f} s)")

    def _transport_reason(self, exc: BaseException, elapsed: float) -> str:
        chain = list(_exception_chain(exc))
        connect, read = self.timeout

        def has(*types: type) -> bool:
            return any(isinstance(e, types) for e in chain)

        if has(urllib3.exceptions.NewConnectionError, requests.exceptions.InvalidURL, socket.gaierror):
            if has(ConnectionRefusedError):
                return "could not be reached (connection refused)"
            if has(socket.gaierror):
                return "could not be reached (host name not found)"
            if has(requests.exceptions.InvalidURL):
                return "could not be reached (the URL is not valid)"
            return "could not be reached (no connection)"
        if has(urllib3.exceptions.ReadTimeoutError, requests.exceptions.ReadTimeout, TimeoutError, socket.timeout):
            return f"timed out after {elapsed:.1f} s (read timeout {read:g} s per attempt)"
        if has(urllib3.exceptions.ConnectTimeoutError, requests.exceptions.ConnectTimeout):
            return f"timed out connecting after {elapsed:.1f} s (connect timeout {connect:g} s per attempt)"
        if has(requests.exceptions.SSLError, ssl.SSLError):
            return "could not be reached (TLS handshake failed)"
        if has(requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError):
            return "sent an answer that could not be decompressed"
        if has(requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError, ConnectionResetError):
            return "dropped the connection before the answer was complete"
        if has(requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            return "could not be reached (the URL is not an http(s) URL)"
        return f"could not be reached ({type(exc).__name__})"

    @staticmethod
    def _fail(reason: str, token: str | None, *, status: int | None = None) -> FhirFetchError:
        if token and token in reason:  # defensive: no reason quotes the server, so none should hold it
            reason = reason.replace(token, "[token]")
        return FhirFetchError(reason, status=status)


# -- Bundle helpers (shared with the prefetch hydrator) -------------------------------------
def _array(value) -> list:
    """A JSON array field, or [] when the server (or client) sent something else there."""
    return value if isinstance(value, list) else []


def bundle_entries_resources(bundle: dict) -> Iterator[tuple[dict, dict]]:
    """(entry, resource) pairs of a Bundle; entries without a resource object are skipped."""
    for entry in _array(bundle.get("entry")):
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry, entry["resource"]


def unusable_entries(bundle: dict) -> list[str]:
    """What is wrong with each entry of a Bundle that holds no FHIR resource; [] when all are usable."""
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [f"entry is {_json_type(entries)}, not an array"]
    problems = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            problems.append(f"entry {i} is {_json_type(entry)}")
        elif resource is None:
            problems.append(f"entry {i} has no resource")
        elif not isinstance(resource, dict):
            problems.append(f"entry {i} has {_json_type(resource)} as its resource")
        elif not isinstance(resource.get("resourceType"), str):
            problems.append(f"entry {i} has a resource without a resourceType")
    return problems


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), "a number")


def _is_outcome_entry(entry: dict, resource: dict) -> bool:
    search = entry.get("search")
    mode = search.get("mode") if isinstance(search, dict) else None
    return resource.get("resourceType") == "OperationOutcome" or mode == "outcome"


def bundle_resources(bundle: dict) -> list[dict]:
    """The data resources of a Bundle: OperationOutcome entries (search.mode "outcome") are left out."""
    return [res for entry, res in bundle_entries_resources(bundle) if not _is_outcome_entry(entry, res)]


def bundle_outcomes(bundle: dict) -> list[dict]:
    """The OperationOutcome entries of a Bundle."""
    return [res for entry, res in bundle_entries_resources(bundle) if _is_outcome_entry(entry, res)]


def outcome_text(outcome: dict) -> str:
    """A short text for an OperationOutcome: its issues' diagnostics/details, or their codes."""
    parts = []
    for issue in _array(outcome.get("issue")):
        if not isinstance(issue, dict):
            continue
        details = issue.get("details") if isinstance(issue.get("details"), dict) else {}
        text = issue.get("diagnostics") or details.get("text") or issue.get("code") or ""
        if isinstance(text, str) and text.strip():
            parts.append(text.strip())
    text = "; ".join(parts) or "no details given"
    return text if len(text) <= _DIAGNOSTICS_LIMIT else text[: _DIAGNOSTICS_LIMIT - 1] + "…"


def _is_error_outcome(outcome: dict) -> bool:
    return any(
        isinstance(issue, dict) and issue.get("severity") in ("error", "fatal") for issue in _array(outcome.get("issue"))
    )


def bundle_link(bundle: dict, relation: str) -> str | None:
    for link in _array(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == relation and isinstance(link.get("url"), str):
            return link["url"] or None
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    try:  # a server-sent URL may be anything: "http://[::1" makes urlsplit raise
        parts = urlsplit(url)
        port, host = parts.port, parts.hostname
    except ValueError:
        return "", "", None
    scheme = parts.scheme.lower()
    return scheme, (host or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _origin_url(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}/"


def _join(base: str, link: str) -> str:
    """urljoin, or "" (inside nothing) for a link it cannot read."""
    try:
        return urljoin(base, link)
    except ValueError:
        return ""


def within(base: str, url: str) -> bool:
    """True when `url` is on the origin of `base` and its path lies under base's path.

    "http://h/fhir" holds "http://h/fhir/Patient/1" and "http://h/fhir?x" but not "http://h/fhirx/..."
    nor "http://h/other"; a path with dot segments is never inside (they could climb out of the base).
    """
    if _origin(url) != _origin(base) or not _origin(base)[1]:
        return False   # (a URL urlsplit cannot read has no origin, so it is never inside)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return False
    path = parts.path or "/"
    if any(segment in (".", "..") for segment in path.split("/")) or "%2e" in path.lower():
        return False
    root = urlsplit(base).path.rstrip("/")
    return path == root or path.startswith(root + "/") or (not root and path.startswith("/"))


# -- HTTP helpers ---------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def _read_capped(resp: requests.Response, budget: CallBudget) -> bytes:
    """Read the (decoded) body while counting it against the call's bytes (_TooLarge) and time (_TooSlow).

    read1 returns whatever has arrived (iter_content would wait for a full chunk), so a server that
    trickles its answer is stopped within one read timeout after the deadline.
    """
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > budget.max_bytes:
        raise _TooLarge()
    body, reader, kept = bytearray(), object(), False
    try:
        while True:
            if budget.remaining() <= 0:
                raise _TooSlow()
            chunk = resp.raw.read1(64 * 1024, decode_content=True)
            if not chunk:
                break
            budget.take(reader, len(chunk))
            body += chunk
        kept = True
        return bytes(body)
    finally:
        budget.done(reader, kept=kept)


def _retry_after(resp: requests.Response) -> float | None:
    value = (resp.headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def _status_reason(status: int) -> str:
    try:
        phrase = " " + HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    hint = {
        401: " (the access token was missing, expired or not accepted)",
        403: " (the access token does not allow this read)",
    }.get(status, "")
    return f"answered HTTP {status}{phrase}{hint}"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts, and exceptions tucked into args or `.reason`."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException))
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
