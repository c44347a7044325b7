"""Client authentication: the signed JWT of CDS Hooks 2.0 ("Trusting CDS Clients").

With CDS_AUTH=required, every request to /cds-services, /cds-services/<id> and
/cds-services/<id>/feedback must carry `Authorization: Bearer <JWT>`. OPTIONS is never
authenticated: browsers send CORS preflights without credentials. With CDS_AUTH=off nothing is checked.

Decisions worth knowing:
- Trusted issuers come from the CDS_TRUSTED_ISSUERS file, `{"<iss>": {"jwks": {...}}}` or
  `{"<iss>": {"jwks_url": "https://..."}}`. A jwks_url must be https (plain http only on loopback,
  for tests). Variable unset: nobody is trusted, every call gets 401, and a warning says so at start.
- Only asymmetric algorithms (ES384, RS384, RS256): `none` and HS* would let anyone holding the
  public key (or nothing) mint tokens.
- `aud` must be exactly the URL called: CDS_PUBLIC_BASE_URL + path. The service refuses to start with
  CDS_AUTH=required and no CDS_PUBLIC_BASE_URL (the Host header is the caller's to choose). A
  trailing-slash difference is a mismatch; only the configured base URL loses its trailing slash.
- Lifetime: exp - iat may be at most 5 minutes (plus the leeway), as CDS Hooks asks; a token valid
  for years is refused even when signed by a trusted issuer.
- `jku` is attacker-controlled: it is only compared with the issuer's configured jwks_url, never
  fetched. An issuer with a static JWKS therefore accepts no token that carries a jku.
- Replays: the (iss, jti) of every accepted token is stored in the database until it expires, so
  the check holds across gunicorn workers.
- Every failure is the same bare 401; the reason is logged at INFO with iss and jti only (never the token).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import urlsplit

import jwt
import requests
from flask import Flask, Response, current_app, g, jsonify, request

from . import fhir_servers
from .config import ConfigError

log = logging.getLogger("spine_cds.auth")

ALGORITHMS = ("ES384", "RS384", "RS256")
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
_KEY_TYPE = {"ES": "EC", "RS": "RSA"}  # the JWK kty each algorithm family needs
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MAX_ID = 255  # iss and jti are stored in VARCHAR(255) columns
MAX_LIFETIME = 300  # seconds: CDS Hooks 2.0 asks clients for exp at most 5 minutes after iat


class AuthError(Exception):
    """Why a request is refused: logged, never sent to the client."""

    def __init__(self, reason: str, claims: dict | None = None):
        super().__init__(reason)
        self.iss = (claims or {}).get("iss")
        self.jti = (claims or {}).get("jti")


class IssuerKeys:
    """The signing keys of one trusted issuer: a static JWKS, or its jwks_url fetched and cached.

    A fetched set is reused for `ttl` seconds; an unknown kid triggers one refetch (key rotation).
    Fetches are per worker process and at most one per `min_refetch` seconds, so tokens with made-up
    kids cannot make every request wait on (or hammer) the issuer.
    """

    def __init__(self, *, jwks: dict | None = None, url: str | None = None, ttl: float = 300,
                 min_refetch: float = 10, timeout: float = 3, clock=time.monotonic):
        self.url = url
        self._keys = _index(jwks) if jwks is not None else {}
        self._ttl, self._min_refetch, self._timeout, self._clock = ttl, min_refetch, timeout, clock
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None    # last attempt, successful or not
        self._lock = threading.Lock()
        self.fhir_servers: tuple[str, ...] = ()  # the issuer's own FHIR servers (fhirServer allow-list)

    def get(self, kid: str) -> dict | None:
        if self.url is None:
            return self._keys.get(kid)
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            may_fetch = self._tried_at is None or now - self._tried_at >= self._min_refetch
            if (stale or kid not in self._keys) and may_fetch:
                self._tried_at = now
                self._fetch(now)
            return self._keys.get(kid)

    def _fetch(self, now: float) -> None:
        try:
            # No redirects: the configured URL is the only one we trust.
            response = requests.get(self.url, timeout=self._timeout, allow_redirects=False,
                                    headers={"Accept": "application/json"})
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            keys = _index(response.json())
        except (requests.RequestException, ValueError) as exc:
            # Keep the keys we had: an outage at the issuer should not lock out its clients at once.
            log.warning("could not fetch the JWKS at %s: %s", self.url, exc)
            return
        self._keys, self._fetched_at = keys, now


def _index(jwks) -> dict[str, dict]:
    """kid -> JWK of the usable signing keys of a JWK Set (EC or RSA, with a kid); ValueError if not a set."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError('a JWK Set must be an object with a "keys" array')
    keys = {}
    for jwk in jwks["keys"]:
        if (isinstance(jwk, dict) and isinstance(jwk.get("kid"), str) and jwk.get("kty") in ("EC", "RSA")
                and jwk.get("use", "sig") == "sig"):
            try:
                jwt.PyJWK(jwk)  # drop keys whose material does not parse, rather than fail on use
            except (jwt.PyJWTError, LookupError, TypeError, ValueError):
                continue
            keys[jwk["kid"]] = jwk
    return keys


def load_issuers(path: str, *, ttl: float, min_refetch: float, timeout: float) -> dict[str, IssuerKeys]:
    """Read the CDS_TRUSTED_ISSUERS file; ConfigError naming the problem if it cannot be used."""
    where = f"CDS_TRUSTED_ISSUERS={path!r}"
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f'{where}: expected an object {{"<iss>": {{"jwks": ...}} or {{"jwks_url": ...}}}}')
    issuers = {}
    for iss, entry in data.items():
        problem = _issuer_problem(iss, entry)
        if problem:
            raise ConfigError(f"{where}, issuer {iss!r}: {problem}")
        if "jwks" in entry:
            issuers[iss] = IssuerKeys(jwks=entry["jwks"])
        else:
            issuers[iss] = IssuerKeys(url=entry["jwks_url"], ttl=ttl, min_refetch=min_refetch, timeout=timeout)
        issuers[iss].fhir_servers = tuple(entry.get("fhir_servers", ()))
    return issuers


def _issuer_problem(iss: str, entry) -> str | None:
    if not iss or len(iss) > _MAX_ID:
        return f"an issuer must be 1 to {_MAX_ID} characters"
    if not isinstance(entry, dict) or set(entry) - {"fhir_servers"} not in ({"jwks"}, {"jwks_url"}):
        return 'expected exactly one of "jwks" (a JWK Set) or "jwks_url", and optionally "fhir_servers"'
    servers = entry.get("fhir_servers", [])
    if not isinstance(servers, list) or not all(isinstance(s, str) and fhir_servers.normalise(s) for s in servers):
        return "fhir_servers must be a list of http(s) base URLs without user-info, query or fragment"
    if "jwks" in entry:
        try:
            keys = _index(entry["jwks"])
        except ValueError as exc:
            return f"jwks: {exc}"
        if len(keys) != len(entry["jwks"]["keys"]):
            return "jwks: every key needs a kid, kty EC or RSA, use sig (or none) and valid key material"
        return None
    url = entry["jwks_url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or not parts.hostname or not (
            parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)):
        return f"jwks_url must be an https URL (http only on loopback), not {url!r}"
    return None


class Verifier:
    def __init__(self, issuers: dict[str, IssuerKeys], store, *, leeway: int):
        self.issuers, self.store, self.leeway = issuers, store, leeway

    def verify(self, authorization: str | None, audience: str) -> dict:
        """The verified claims of the bearer JWT; AuthError says why not."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("no bearer token")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})  # only to find iss/jti
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token ({exc})") from None
        try:
            return self._verify(token, unverified, audience)
        except (AuthError, jwt.PyJWTError) as exc:
            reason = str(exc) if isinstance(exc, AuthError) else f"{type(exc).__name__}: {exc}"
            raise AuthError(reason, unverified) from None

    def _verify(self, token: str, unverified: dict, audience: str) -> dict:
        header = jwt.get_unverified_header(token)
        alg, kid, iss = header.get("alg"), header.get("kid"), unverified.get("iss")
        if alg not in ALGORITHMS:
            raise AuthError(f"alg {alg!r} is not allowed")
        if str(header.get("typ", "JWT")).upper() != "JWT":
            raise AuthError(f"typ {header['typ']!r} is not JWT")
        if not isinstance(kid, str) or not kid:
            raise AuthError("no kid in the header")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthError("iss is not trusted")
        if "jku" in header and header["jku"] != issuer.url:
            raise AuthError("jku is not the issuer's configured jwks_url")
        jwk = issuer.get(kid)
        if jwk is None:
            raise AuthError(f"unknown kid {kid!r}")
        # PyJWK(algorithm=alg) overrides the key's own "alg", so check the pairing ourselves.
        if jwk.get("alg", alg) != alg or jwk["kty"] != _KEY_TYPE[alg[:2]]:
            raise AuthError(f"key {kid!r} is not a {alg} key")
        # Explicit alg: an RSA JWK without "alg" would otherwise be taken as RS256 only.
        key = jwt.PyJWK(jwk, algorithm=alg)
        claims = jwt.decode(token, key=key, algorithms=[alg], audience=audience, issuer=iss, leeway=self.leeway,
                            options={"require": REQUIRED_CLAIMS})
        lifetime = claims["exp"] - claims["iat"] if all(
            isinstance(claims[c], (int, float)) for c in ("exp", "iat")) else None
        if lifetime is None or lifetime > MAX_LIFETIME + self.leeway:
            raise AuthError(f"token lifetime exp - iat is over {MAX_LIFETIME} s (plus {self.leeway} s leeway)")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_ID:
            raise AuthError(f"jti must be a string of 1 to {_MAX_ID} characters")
        exp = min(int(claims["exp"]), 2**62)  # stays within a BIGINT column whatever the issuer signed
        if not self.store.remember_jti(iss, jti, exp, forget_before=int(time.time()) - self.leeway):
            raise AuthError("jti already used (replay)")
        return claims


def caller_fhir_servers() -> tuple[str, ...]:
    """The `fhir_servers` of the trusted issuer whose JWT this request carried; () without one."""
    verifier = current_app.extensions.get("auth")
    claims = g.get("client_claims") or {}
    issuer = verifier.issuers.get(claims.get("iss")) if verifier is not None else None
    return issuer.fhir_servers if issuer is not None else ()


def _protected(path: str) -> bool:
    return path == "/cds-services" or path.startswith("/cds-services/")


UNAUTHORIZED = {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "login",
                           "diagnostics": "unauthorized: send a bearer JWT this service accepts (see GET /openapi.json)"}]}


def _unauthorized() -> Response:
    # The same answer whatever the reason: details help an attacker more than a client.
    response = jsonify(UNAUTHORIZED)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def init_app(app: Flask) -> None:
    cfg = app.config["CDS"]
    if cfg["AUTH"] == "off":
        return
    if cfg["TRUSTED_ISSUERS"]:
        issuers = load_issuers(cfg["TRUSTED_ISSUERS"], ttl=cfg["JWKS_CACHE_SECONDS"],
                               min_refetch=cfg["JWKS_MIN_REFETCH_SECONDS"], timeout=cfg["JWKS_TIMEOUT"])
    else:
        issuers = {}
    public_base = (cfg["PUBLIC_BASE_URL"] or "").rstrip("/")
    if not public_base:
        # Without it the audience would come from the caller's own Host header: any token minted for
        # another service on any host would do.
        raise ConfigError("CDS_AUTH=required needs CDS_PUBLIC_BASE_URL, the base URL clients call "
                          "(e.g. https://cds.example.org): client JWTs must carry it as their aud")
    if not issuers:
        log.warning("CDS_AUTH=required and CDS_TRUSTED_ISSUERS names no issuer: every call to /cds-services gets 401")
    verifier = Verifier(issuers, app.extensions["store"], leeway=cfg["JWT_LEEWAY"])
    app.extensions["auth"] = verifier

    @app.before_request
    def require_client_jwt():
        if request.method == "OPTIONS" or not _protected(request.path):
            return None
        audience = public_base + request.path
        try:
            g.client_claims = verifier.verify(request.headers.get("Authorization"), audience)
        except AuthError as exc:
            log.info("401 %s %s: %.300s (iss=%.200r, jti=%.200r)", request.method, request.path, exc, exc.iss, exc.jti)
            return _unauthorized()
        return None
