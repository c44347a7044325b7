"""The reach of `fhirServer`: which FHIR servers a request may make the service fetch from (contract).

`fhirServer` comes from the caller. Unchecked, it makes the service GET any URL it can reach (loopback
admin ports, cloud metadata, the service itself) with the caller's token. So a request may name only:
- a base URL listed in CDS_FHIR_SERVERS (comma-separated), or in the `fhir_servers` of the trusted
  issuer that signed its JWT (CDS_TRUSTED_ISSUERS);
- with neither list set: a loopback server, and only with CDS_AUTH=off (a developer's machine).
The URL must be plain http(s) with no user-info, query or fragment; it is compared after
normalising the scheme, host, default port and trailing slash. Anything else is a 400 naming the field.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from .errors import InvalidRequest

FIELD = "$.fhirServer"


def normalise(url: str) -> str | None:
    """scheme://host:port/path (no trailing slash) of an acceptable base URL, else None."""
    if not isinstance(url, str) or any(c in url for c in "?#@\\ \t\r\n") or len(url) > 2048:
        return None
    try:  # urlsplit and .port raise ValueError on a broken authority ("http://[::1", a port of "x")
        parts = urlsplit(url.strip())
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not hostname:
        return None
    path = parts.path.rstrip("/")
    if any(segment in (".", "..") for segment in path.split("/")) or "%" in path:
        return None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://{hostname.lower()}:{port}{path}"


def configured(setting: str | None) -> set[str]:
    """The normalised bases of CDS_FHIR_SERVERS; ValueError naming an entry that is not a base URL."""
    bases = set()
    for entry in (setting or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        base = normalise(entry)
        if base is None:
            raise ValueError(f"{entry!r} is not an http(s) base URL without user-info, query or fragment")
        bases.add(base)
    return bases


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(fhir_server, config: dict, issuer_servers: Iterable[str] = ()) -> None:
    """InvalidRequest (400) unless the request's fhirServer (when it names one) may be fetched from."""
    if fhir_server is None:
        return
    base = normalise(fhir_server)
    if base is None:
        raise InvalidRequest("fhirServer must be an http(s) base URL without user-info, query or fragment",
                             field=FIELD)
    allowed = configured(config.get("FHIR_SERVERS")) | {b for b in map(normalise, issuer_servers) if b}
    if allowed:
        if base not in allowed:
            raise InvalidRequest("fhirServer is not a FHIR server this service may fetch from "
                                 "(CDS_FHIR_SERVERS or the issuer's fhir_servers)", field=FIELD)
        return
    if config.get("AUTH") != "off":
        raise InvalidRequest("fhirServer is not a FHIR server this service may fetch from: no FHIR server is "
                             "configured (CDS_FHIR_SERVERS)", field=FIELD)
    if not is_loopback(base):
        raise InvalidRequest("fhirServer is not a FHIR server this service may fetch from: with CDS_AUTH=off and "
                             "no CDS_FHIR_SERVERS, only loopback servers", field=FIELD)
