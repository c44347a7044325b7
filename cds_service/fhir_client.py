"""HTTP client for the EHR's FHIR server (the `fhirServer` of a CDS Hooks request).

Plain dicts in, plain dicts out: no FHIR models here, big charts must stay cheap.

Thread safety: one `requests.Session` is shared by all threads of a client. That is safe for
what we do with it because nothing on the session changes after construction: the adapters are
mounted once, the access token travels in per-call headers (never on `session.headers`), and
cookies are refused (a cookie set for one user's request must never ride along on another
user's request). The urllib3 pool under the adapter is thread-safe and sized to `max_workers`,
so concurrent GETs each get their own connection.

Every failure of a fetch raises `FhirFetchError`, never a `requests`/`urllib3`/JSON exception.
Its `reason` is a short phrase meant to follow "… at the FHIR server", e.g. "timed out after
5.0 s"; it never contains the access token.
"""
from __future__ import annotations

import http.cookiejar
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
_ERROR_BODY_LIMIT = 64 * 1024  # enough for an OperationOutcome on a 4xx/5xx answer
_DIAGNOSTICS_LIMIT = 200  # characters of a server's OperationOutcome text we quote


class FhirFetchError(Exception):
    """A FHIR read or search could not deliver usable data.

    `reason` completes a sentence such as "Condition search at the FHIR server <reason>".
    `status` is the HTTP status when the server answered, else None.
    """

    def __init__(self, reason: str, *, status: int | None = None):
        super().__init__(f"the FHIR server {reason}")
        self.reason = reason
        self.status = status


def default_retry() -> Retry:
    """Retries for idempotent GETs: connection errors, read timeouts and 502/503/504.

    A 500 is not retried (it is usually a bug that will repeat). Retry-After is honoured but
    capped at 1 s: a CDS answer is due in about 500 ms, we cannot wait minutes for an EHR.
    """
    return Retry(
        total=2,
        backoff_factor=0.1,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        retry_after_max=1,
    )


class FhirClient:
    """GETs FHIR resources and searchsets, following `next` links.

    One client can serve many hook calls: the FHIR base and the access token are per call.
    Settings:
      timeout      (connect, read) seconds for each HTTP request;
      max_pages    pages of one search, the first included; more is an error (an incomplete
                   chart must not pass for a complete one);
      max_bytes    bytes of one read or of all pages of one search together (decoded);
      max_workers  how many fetches callers may run at once (sizes the connection pool; the
                   prefetch hydrator bounds its thread pool with it);
      deadline     seconds one GET may take in all, retries and body included (default
                   connect + 3 x read): per-read timeouts alone never stop a server that sends its
                   answer a few bytes at a time.
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
        session.max_redirects = 5
        adapter = HTTPAdapter(max_retries=self.retry, pool_connections=4, pool_maxsize=max_workers)
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

    # -- public API ------------------------------------------------------------------------
    def read(self, url: str, *, access_token: str | None = None) -> dict:
        """GET one resource (absolute URL). Any resource but an OperationOutcome is data."""
        resource, _ = self._get_resource(url, access_token, budget=self.max_bytes)
        return resource

    def search(self, url: str, *, access_token: str | None = None, base: str | None = None) -> list[dict]:
        """GET a searchset (absolute URL) and every `next` page; returns the entry resources.

        Relative `next` links are resolved against `base` (the FHIR service base), or against
        the page's own URL when no base is given. A `next` link is followed only on the same
        server (scheme, host, port) as `base`/`url`, so the token never leaves it.
        """
        bundle, used = self._get_resource(url, access_token, budget=self.max_bytes)
        if bundle.get("resourceType") != "Bundle":
            raise self._fail(
                f"answered a {bundle.get('resourceType')} where a search Bundle was expected", access_token
            )
        return self._collect(bundle, url, access_token, base=base, seen={url}, used=used)

    def follow(self, bundle: dict, *, base: str, access_token: str | None = None) -> list[dict]:
        """Resources of the pages after `bundle` (e.g. a prefetched first page with a `next` link).

        The entries of `bundle` itself are not returned: the caller already has them.
        """
        seen = {link for link in [bundle_link(bundle, "self")] if link}
        return self._collect(bundle, base, access_token, base=base, seen=seen, used=0, first_page=False)

    # -- internals -------------------------------------------------------------------------
    def _collect(
        self,
        bundle: dict,
        url: str,
        token: str | None,
        *,
        base: str | None,
        seen: set[str],
        used: int,
        first_page: bool = True,
    ) -> list[dict]:
        """Resources of `bundle` (unless not `first_page`) and of the pages its next links lead to."""
        resources = self._page_resources(bundle, token) if first_page else []
        allowed = _origin(base or url)
        resolve_against = (base.rstrip("/") + "/") if base else url
        pages = 1
        while True:
            nxt = bundle_link(bundle, "next")
            if not nxt:
                return resources
            nxt = urljoin(resolve_against, nxt)
            if _origin(nxt) != allowed:
                raise self._fail(
                    f"returned a next link to another server ({urlsplit(nxt).hostname}); "
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
            bundle, size = self._get_resource(nxt, token, budget=self.max_bytes - used)
            used += size
            pages += 1
            if bundle.get("resourceType") != "Bundle":
                raise self._fail(
                    f"answered a {bundle.get('resourceType')} for page {pages} where a search Bundle was expected",
                    token,
                )
            resources.extend(self._page_resources(bundle, token))

    def _page_resources(self, bundle: dict, token: str | None) -> list[dict]:
        unusable = unusable_entries(bundle)
        if unusable:  # dropping them quietly would pass an incomplete chart for a complete one
            count = f"{len(unusable)} {'entry' if len(unusable) == 1 else 'entries'}"
            raise self._fail(f"answered a search Bundle with {count} that are not FHIR resources "
                             f"({'; '.join(unusable[:3])})", token)
        for outcome in bundle_outcomes(bundle):
            if _is_error_outcome(outcome):
                raise self._fail(f"reported an error in the search results: {outcome_text(outcome)}", token)
        return bundle_resources(bundle)

    def _get_resource(self, url: str, token: str | None, *, budget: int) -> tuple[dict, int]:
        """GET `url`; return (resource, bytes read). Raises FhirFetchError for anything unusable."""
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        until = started + self.deadline
        try:
            with self._session.get(url, headers=headers, timeout=self.timeout, stream=True) as resp:
                status = resp.status_code
                if not 200 <= status < 300:
                    body = _read_capped(resp, _ERROR_BODY_LIMIT, truncate=True, until=until)
                    raise self._fail(_status_reason(resp, body), token, status=status)
                content_type = resp.headers.get("Content-Type", "")
                body = _read_capped(resp, budget, until=until)
        except FhirFetchError:
            raise
        except _TooLarge:
            raise self._fail(
                f"sent an answer larger than {self.max_bytes} bytes (max_bytes); it was not read to the end", token
            ) from None
        except _TooSlow:
            raise self._fail(
                f"sent its answer too slowly: not complete after {time.monotonic() - started:.1f} s "
                f"(deadline {self.deadline:g} s per query)", token
            ) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:  # urllib3's: raised by raw reads
            raise self._fail(self._transport_reason(exc, time.monotonic() - started), token) from None
        log.debug("GET %s -> %s in %.0f ms", urlsplit(url).path, status, (time.monotonic() - started) * 1000)
        try:
            resource = orjson.loads(body)
        except orjson.JSONDecodeError:
            what = "an empty body" if not body.strip() else "a body that is not JSON"
            shown = f" (Content-Type {content_type})" if content_type else ""
            raise self._fail(f"answered HTTP {status} with {what}{shown}", token) from None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise self._fail("answered JSON that is not a FHIR resource (no resourceType)", token)
        if resource["resourceType"] == "OperationOutcome":
            raise self._fail(f"answered with an OperationOutcome instead of data: {outcome_text(resource)}", token)
        return resource, len(body)

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
        if has(requests.exceptions.TooManyRedirects):
            return "redirected too many times"
        if has(requests.exceptions.RetryError):
            return "kept failing after retries"
        if has(requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError):
            return "sent an answer that could not be decompressed"
        if has(requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError, ConnectionResetError):
            return "dropped the connection before the answer was complete"
        if has(requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            return "could not be reached (the URL is not an http(s) URL)"
        return f"could not be reached ({type(exc).__name__})"

    @staticmethod
    def _fail(reason: str, token: str | None, *, status: int | None = None) -> FhirFetchError:
        if token and token in reason:  # e.g. a server that echoes the header in its diagnostics
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
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


# -- HTTP helpers ---------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def _read_capped(resp: requests.Response, limit: int, *, truncate: bool = False, until: float | None = None) -> bytes:
    """Read the (decoded) body, stopping past `limit` bytes (_TooLarge, or cut when `truncate`) or
    past the monotonic time `until` (_TooSlow).

    read1 returns whatever has arrived (iter_content would wait for a full chunk), so a server
    that trickles its answer is stopped within one read timeout after `until`.
    """
    declared = resp.headers.get("Content-Length")
    if not truncate and declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge()
    body = bytearray()
    while True:
        if until is not None and time.monotonic() > until:
            raise _TooSlow()
        chunk = resp.raw.read1(64 * 1024, decode_content=True)
        if not chunk:
            break
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise _TooLarge()
    return bytes(body)


def _status_reason(resp: requests.Response, body: bytes) -> str:
    status = resp.status_code
    reason = f"answered HTTP {status}" + (f" {resp.reason}" if resp.reason else "")
    hint = {
        401: "the access token was missing, expired or not accepted",
        403: "the access token does not allow this read",
    }.get(status)
    details = None
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome":
        details = outcome_text(parsed)
    extra = "; ".join(x for x in (hint, details) if x)
    return f"{reason} ({extra})" if extra else reason


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
