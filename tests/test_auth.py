"""Client JWT authentication (CDS Hooks 2.0) and CORS, over HTTP against the real gunicorn service.

Issuers of the main service:
  EHR  static JWKS: ec-1 (P-384, "alg": "ES384"), rsa-1 (no "alg": serves RS384 and RS256), p256-1 (P-256),
       rsa-256 (the same RSA key, published with "alg": "RS256")
  IDP  jwks_url on a local JWKS server (tests/support/jwks_server.py): idp-1
Every refusal must be the same bare 401.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
import uuid

import jwt
import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import der_to_raw_signature

from cds_service import auth
from cds_service.app import create_app
from cds_service.config import ConfigError
from cds_service.persistence import Store, jwt_replay
from tests.conftest import SERVICE_PATH, self_audience, start_service
from tests.stubs import fhir
from tests.support.servers import ServerProcess, jwks_command

DISCOVERY_PATH = "/cds-services"
FEEDBACK_PATH = SERVICE_PATH + "/feedback"
EHR = "https://ehr.example.org"
IDP = "https://idp.example.org"
EVIL = "https://evil.example.org"
PUBLIC_BASE = "https://cds.example.org"

EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256_KEY = ec.generate_private_key(ec.SECP256R1())
IDP_KEY = ec.generate_private_key(ec.SECP384R1())
IDP_NEW_KEY = ec.generate_private_key(ec.SECP384R1())
STRANGER_KEY = ec.generate_private_key(ec.SECP384R1())  # nobody publishes it

FUSION = fhir.service_request("Lumbar fusion L4-L5", cpts=["22633"], body_site="L4-L5")
ORDER = fhir.make_request([FUSION], [])
FEEDBACK = {"feedback": [{"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2025-06-20T10:05:31Z"}]}


def ec_jwk(key, kid: str, alg: str | None = "ES384") -> dict:
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "use": "sig"}
    return jwk | {"alg": alg} if alg else jwk


def rsa_jwk(key, kid: str) -> dict:
    return RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "use": "sig"}  # no "alg" on purpose


EHR_JWKS = {"keys": [ec_jwk(EC_KEY, "ec-1"), rsa_jwk(RSA_KEY, "rsa-1"), ec_jwk(P256_KEY, "p256-1", alg=None),
                     rsa_jwk(RSA_KEY, "rsa-256") | {"alg": "RS256"}]}


def claims(aud, *, iss: str = EHR, drop: tuple = (), **over) -> dict:
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())} | over
    for name in drop:
        del payload[name]
    return payload


def token(aud, *, key=EC_KEY, alg: str = "ES384", kid: str | None = "ec-1", headers: dict | None = None,
          iss: str = EHR, drop: tuple = (), **over) -> str:
    header = {"typ": "JWT"} | ({"kid": kid} if kid else {}) | (headers or {})
    return jwt.encode(claims(aud, iss=iss, drop=drop, **over), key, algorithm=alg, headers=header)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, sign=lambda signing_input: b"") -> str:
    """A JWT built by hand, for what PyJWT refuses to sign (alg none, HS256 keyed with a public key)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def hs256(secret: bytes):
    return lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest()


def es384_with(key):
    """ECDSA-SHA384 with any curve (PyJWT refuses to sign ES384 with a P-256 key)."""
    return lambda signing_input: der_to_raw_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA384())), key.curve)


RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def write_json(path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # atomic: the JWKS server never reads half a file


def bearer(tok: str | None) -> dict:
    return {"Authorization": f"Bearer {tok}"} if tok else {}


def call(server, path: str, tok: str | None = None, **headers) -> requests.Response:
    """GET discovery, or POST an order-sign request / feedback, with an optional bearer token."""
    headers = bearer(tok) | headers
    if path == DISCOVERY_PATH:
        return requests.get(server.url + path, headers=headers, timeout=10)
    body = FEEDBACK if path.endswith("/feedback") else ORDER
    return requests.post(server.url + path, json=body, headers=headers, timeout=30)


def assert_ok(response: requests.Response, path: str) -> None:
    assert response.status_code == 200, response.text
    if path == DISCOVERY_PATH:
        assert [s["id"] for s in response.json()["services"]] == ["spine-surgery-order-sign"]
    elif path == SERVICE_PATH:
        assert set(response.json()) == {"cards"}   # a non-spine body: no empty systemActions (contract)


def assert_unauthorized(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == auth.UNAUTHORIZED and response.json()["issue"][0]["code"] == "login"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def jwks_fetches(jwks_server) -> int:
    return requests.get(jwks_server.url + "/_stats", timeout=5).json()["requests"]


# ---------------------------------------------------------------- services


@pytest.fixture(scope="module")
def idp_jwks(tmp_path_factory):
    file = tmp_path_factory.mktemp("idp") / "jwks.json"
    write_json(file, {"keys": [ec_jwk(IDP_KEY, "idp-1")]})
    with ServerProcess.start(jwks_command(file), ready_path="/_stats") as server:
        server.jwks_url = server.url + "/.well-known/jwks.json"
        yield server


def issuers_file(directory, idp_url: str):
    file = directory / "trusted-issuers.json"
    write_json(file, {EHR: {"jwks": EHR_JWKS}, IDP: {"jwks_url": idp_url}})
    return file


@pytest.fixture(scope="module")
def svc(tmp_path_factory, idp_jwks):
    directory = tmp_path_factory.mktemp("auth-service")
    with start_service(directory, CDS_AUTH="required",
                       CDS_TRUSTED_ISSUERS=str(issuers_file(directory, idp_jwks.jwks_url))) as server:
        yield server


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, idp_jwks):
    """Behind a proxy: clients call https://cds.example.org/; only two browser origins are allowed."""
    directory = tmp_path_factory.mktemp("proxied-service")
    with start_service(directory, CDS_AUTH="required",
                       CDS_TRUSTED_ISSUERS=str(issuers_file(directory, idp_jwks.jwks_url)),
                       CDS_PUBLIC_BASE_URL=PUBLIC_BASE + "/",  # the configured trailing slash is dropped
                       CDS_CORS_ORIGINS="https://ehr.example.org, https://sandbox.cds-hooks.org") as server:
        yield server


# ---------------------------------------------------------------- accepted tokens

ENDPOINTS = [DISCOVERY_PATH, SERVICE_PATH]


def test_service_says_auth_is_required_at_start(svc):
    assert "CDS_AUTH=required" in svc.output_tail()


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("alg, key, kid", [("ES384", EC_KEY, "ec-1"), ("RS384", RSA_KEY, "rsa-1"),
                                           ("RS256", RSA_KEY, "rsa-1")], ids=["ES384", "RS384", "RS256"])
def test_valid_token_is_accepted(svc, path, alg, key, kid):
    assert_ok(call(svc, path, token(svc.url + path, key=key, alg=alg, kid=kid)), path)


def test_key_published_with_an_alg_serves_that_alg(svc):
    assert_ok(call(svc, DISCOVERY_PATH, token(svc.url + DISCOVERY_PATH, key=RSA_KEY, alg="RS256", kid="rsa-256")),
              DISCOVERY_PATH)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_aud_may_be_an_array_holding_the_url(svc, path):
    assert_ok(call(svc, path, token(["https://other.example.org/cds-services", svc.url + path])), path)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_expired_within_leeway_is_accepted(svc, path):
    now = int(time.time())
    assert_ok(call(svc, path, token(svc.url + path, iat=now - 330, exp=now - 30)), path)


@pytest.mark.parametrize("jku", [None, "configured"])
def test_jwks_url_issuer_is_accepted_with_or_without_its_jku(svc, idp_jwks, jku):
    headers = {"jku": idp_jwks.jwks_url} if jku else {}
    url = svc.url + SERVICE_PATH
    assert_ok(call(svc, SERVICE_PATH, token(url, key=IDP_KEY, kid="idp-1", iss=IDP, headers=headers)), SERVICE_PATH)


def test_typ_is_optional(svc):
    url = svc.url + DISCOVERY_PATH
    tok = jwt.encode(claims(url), EC_KEY, algorithm="ES384", headers={"kid": "ec-1", "typ": None})
    assert "typ" not in jwt.get_unverified_header(tok)
    assert_ok(call(svc, DISCOVERY_PATH, tok), DISCOVERY_PATH)


# ---------------------------------------------------------------- refused tokens


def _expired(url):
    now = int(time.time())
    return token(url, iat=now - 400, exp=now - 90)  # 90 s late, leeway 60 s


REFUSED = {
    "no token": lambda url, svc: None,
    "basic scheme": lambda url, svc: ("basic", "dXNlcjpwYXNz"),
    "bearer garbage": lambda url, svc: "not.a.jwt",
    "expired beyond leeway": lambda url, svc: _expired(url),
    "iat in the future": lambda url, svc: token(url, iat=int(time.time()) + 600),
    "wrong aud": lambda url, svc: token("https://other.example.org" + url.removeprefix(svc.url)),
    "aud with a trailing slash": lambda url, svc: token(url + "/"),
    "aud of another port": lambda url, svc: token(url.replace(f":{svc.port}", f":{svc.port + 1}")),
    "alg none": lambda url, svc: hand_made({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims(url)),
    "alg none, no kid": lambda url, svc: hand_made({"alg": "none", "typ": "JWT"}, claims(url)),
    "HS256 keyed with the RSA public key": lambda url, svc: hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(url), hs256(RSA_PUBLIC_PEM)),
    "HS256 with a secret": lambda url, svc: hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, claims(url), hs256(b"s" * 64)),
    "ES256 not allowed": lambda url, svc: token(url, key=P256_KEY, alg="ES256", kid="p256-1"),
    "typ not JWT": lambda url, svc: token(url, headers={"typ": "at+jwt"}),
    "no kid": lambda url, svc: token(url, kid=None),
    "unknown kid": lambda url, svc: token(url, kid="ec-2"),
    "signed by another key": lambda url, svc: token(url, key=STRANGER_KEY),
    "RS384 under the EC key's kid": lambda url, svc: token(url, key=RSA_KEY, alg="RS384", kid="ec-1"),
    "ES384 under the RSA key's kid": lambda url, svc: token(url, kid="rsa-1"),
    "RS384 with a key published for RS256": lambda url, svc: token(url, key=RSA_KEY, alg="RS384", kid="rsa-256"),
    "ES384 with the P-256 key": lambda url, svc: hand_made(
        {"alg": "ES384", "typ": "JWT", "kid": "p256-1"}, claims(url), es384_with(P256_KEY)),
    "untrusted iss": lambda url, svc: token(url, key=STRANGER_KEY, iss=EVIL),
    "iss of another trusted issuer": lambda url, svc: token(url, iss=IDP),
    "no iss": lambda url, svc: token(url, drop=("iss",)),
    "jku on a static issuer": lambda url, svc: token(url, headers={"jku": "https://ehr.example.org/jwks.json"}),
    "jku not the configured one": lambda url, svc: token(
        url, key=IDP_KEY, kid="idp-1", iss=IDP, headers={"jku": "http://127.0.0.1:1/.well-known/jwks.json"}),
    "no iat": lambda url, svc: token(url, drop=("iat",)),
    "no jti": lambda url, svc: token(url, drop=("jti",)),
    "no exp": lambda url, svc: token(url, drop=("exp",)),
    "no aud": lambda url, svc: token(url, drop=("aud",)),
    "jti not a string": lambda url, svc: token(url, jti=12345),
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_token_gets_bare_401(svc, path, case):
    tok = REFUSED[case](svc.url + path, svc)
    if isinstance(tok, tuple):
        response = call(svc, path, Authorization=f"{tok[0]} {tok[1]}")
    else:
        response = call(svc, path, tok)
    assert_unauthorized(response)


def test_discovery_aud_does_not_open_the_service(svc):
    assert_unauthorized(call(svc, SERVICE_PATH, token(svc.url + DISCOVERY_PATH)))


def test_unknown_service_path_needs_a_token_too(svc):
    # 401 rather than 404: an anonymous caller does not learn which services exist.
    response = requests.post(svc.url + "/cds-services/no-such-service", json=ORDER, timeout=10)
    assert_unauthorized(response)


def test_replayed_jti_is_refused_by_every_worker(svc):
    tok = token(svc.url + DISCOVERY_PATH)
    assert_ok(call(svc, DISCOVERY_PATH, tok), DISCOVERY_PATH)
    for _ in range(4):  # two gunicorn workers: the store is shared, so both refuse it
        assert_unauthorized(call(svc, DISCOVERY_PATH, tok))


def test_replayed_jti_is_refused_by_every_worker_on_postgresql(tmp_path, postgres_url):
    issuers = tmp_path / "trusted-issuers.json"
    write_json(issuers, {EHR: {"jwks": EHR_JWKS}})
    with start_service(tmp_path, CDS_AUTH="required", CDS_TRUSTED_ISSUERS=str(issuers),
                       CDS_DATABASE_URL=postgres_url) as server:
        tok = token(server.url + DISCOVERY_PATH)
        assert_ok(call(server, DISCOVERY_PATH, tok), DISCOVERY_PATH)
        for _ in range(4):
            assert_unauthorized(call(server, DISCOVERY_PATH, tok))
    store = Store(postgres_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(jwt_replay.c.iss)).scalars().all() == [EHR]  # recorded in PostgreSQL
    store.dispose()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operations_endpoints_need_no_token(svc, path):
    # Probes and Prometheus carry no CDS client JWT; restrict /metrics at the proxy instead.
    assert requests.get(svc.url + path, timeout=10).status_code == 200


def test_same_jti_from_two_issuers_is_not_a_replay(svc):
    url = svc.url + DISCOVERY_PATH
    jti = str(uuid.uuid4())
    assert_ok(call(svc, DISCOVERY_PATH, token(url, jti=jti)), DISCOVERY_PATH)
    assert_ok(call(svc, DISCOVERY_PATH, token(url, key=IDP_KEY, kid="idp-1", iss=IDP, jti=jti)), DISCOVERY_PATH)


def test_feedback_requires_a_token_for_its_own_url(svc):
    url = svc.url + FEEDBACK_PATH
    response = call(svc, FEEDBACK_PATH, token(url))
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 1, "duplicates": 0}
    assert_unauthorized(call(svc, FEEDBACK_PATH))
    assert_unauthorized(call(svc, FEEDBACK_PATH, token(svc.url + SERVICE_PATH)))


def test_made_up_kids_do_not_hammer_the_jwks_url(svc, idp_jwks):
    url = svc.url + DISCOVERY_PATH
    before = jwks_fetches(idp_jwks)
    for n in range(6):
        assert_unauthorized(call(svc, DISCOVERY_PATH, token(url, key=IDP_KEY, kid=f"made-up-{n}", iss=IDP)))
    # At most one fetch per worker within CDS_JWKS_MIN_REFETCH_SECONDS (10 s), not one per request.
    assert jwks_fetches(idp_jwks) - before <= 2


# ---------------------------------------------------------------- behind a proxy: CDS_PUBLIC_BASE_URL


@pytest.mark.parametrize("path", ENDPOINTS)
def test_public_base_url_is_the_audience(proxied, path):
    assert_ok(call(proxied, path, token(PUBLIC_BASE + path)), path)
    assert_unauthorized(call(proxied, path, token(proxied.url + path)))  # the internal URL is not the audience


# ---------------------------------------------------------------- key rotation on a jwks_url


def one_worker_service(port: int) -> list[str]:
    # One worker, so the JWKS fetch count does not depend on which worker took a request.
    return [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def test_unknown_kid_refetches_once_and_a_rotated_key_is_accepted(tmp_path):
    jwks_file = tmp_path / "jwks.json"
    write_json(jwks_file, {"keys": [ec_jwk(IDP_KEY, "idp-1")]})
    with ServerProcess.start(jwks_command(jwks_file), ready_path="/_stats") as jwks_server:
        trusted = tmp_path / "trusted.json"
        write_json(trusted, {IDP: {"jwks_url": jwks_server.url + "/jwks.json"}})
        env = {**os.environ, "CDS_AUTH": "required", "CDS_TRUSTED_ISSUERS": str(trusted),
               "CDS_VAR_DIR": str(tmp_path / "var"), "CDS_JWKS_MIN_REFETCH_SECONDS": "0"}
        with ServerProcess.start(self_audience(one_worker_service), ready_path="/cds-services", env=env,
                                 timeout=30) as server:
            url = server.url + DISCOVERY_PATH

            def attempt(kid: str, key) -> requests.Response:
                return call(server, DISCOVERY_PATH, token(url, key=key, kid=kid, iss=IDP))

            assert jwks_fetches(jwks_server) == 0  # fetched on first use, not at start
            assert_ok(attempt("idp-1", IDP_KEY), DISCOVERY_PATH)
            assert jwks_fetches(jwks_server) == 1
            assert_ok(attempt("idp-1", IDP_KEY), DISCOVERY_PATH)
            assert jwks_fetches(jwks_server) == 1  # cached

            assert_unauthorized(attempt("idp-2", IDP_NEW_KEY))  # not published yet
            assert jwks_fetches(jwks_server) == 2  # exactly one refetch for the unknown kid

            write_json(jwks_file, {"keys": [ec_jwk(IDP_KEY, "idp-1"), ec_jwk(IDP_NEW_KEY, "idp-2")]})
            assert_ok(attempt("idp-2", IDP_NEW_KEY), DISCOVERY_PATH)
            assert jwks_fetches(jwks_server) == 3
            assert_ok(attempt("idp-2", IDP_NEW_KEY), DISCOVERY_PATH)
            assert_ok(attempt("idp-1", IDP_KEY), DISCOVERY_PATH)
            assert jwks_fetches(jwks_server) == 3


class _FakeJwksResponse:
    status_code = 200

    def __init__(self, jwks):
        self._jwks = jwks

    def json(self):
        return self._jwks


def test_jwks_fetches_are_rate_limited_and_cached(monkeypatch):
    fetched = []
    jwks = {"keys": [ec_jwk(IDP_KEY, "idp-1")]}

    def fake_get(url, **kwargs):
        fetched.append(url)
        if isinstance(jwks, Exception):
            raise jwks
        return _FakeJwksResponse(jwks)

    monkeypatch.setattr(auth.requests, "get", fake_get)
    now = [1000.0]
    keys = auth.IssuerKeys(url="https://idp.example.org/jwks", ttl=300, min_refetch=10, clock=lambda: now[0])
    assert keys.get("idp-1")["kid"] == "idp-1" and len(fetched) == 1
    assert keys.get("made-up") is None and len(fetched) == 1  # last fetch < 10 s ago: no refetch
    now[0] += 10
    assert keys.get("made-up") is None and len(fetched) == 2  # one refetch
    assert keys.get("made-up-2") is None and len(fetched) == 2
    now[0] += 299
    assert keys.get("idp-1") is not None and len(fetched) == 2  # still fresh
    now[0] += 1
    jwks = requests.ConnectionError("down")
    assert keys.get("idp-1") is not None and len(fetched) == 3  # stale, refetch failed: old keys kept
    assert keys.get("idp-1") is not None and len(fetched) == 3  # and no retry before 10 s


# ---------------------------------------------------------------- CORS


@pytest.mark.parametrize("path, method", [(DISCOVERY_PATH, "GET"), (SERVICE_PATH, "POST"), (FEEDBACK_PATH, "POST")])
def test_preflight_is_answered_without_a_token(svc, path, method):
    response = requests.options(svc.url + path, timeout=10, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert response.status_code in (200, 204), response.text
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == {"GET", "POST", "OPTIONS"}
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type"}
    assert "WWW-Authenticate" not in response.headers


def test_401_carries_cors_headers_so_a_browser_can_read_it(svc):
    response = requests.get(svc.url + DISCOVERY_PATH, headers={"Origin": "https://sandbox.cds-hooks.org"}, timeout=10)
    assert_unauthorized(response)
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_configured_origins_allow_those_and_no_other(proxied):
    def preflight(origin: str) -> requests.Response:
        return requests.options(proxied.url + SERVICE_PATH, timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type"})

    allowed = preflight("https://sandbox.cds-hooks.org")
    assert allowed.status_code in (200, 204)
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    other = preflight("https://evil.example.org")
    assert other.status_code in (200, 204)
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Headers" not in other.headers


# ---------------------------------------------------------------- start-up and defaults


def test_bare_app_requires_auth_and_will_not_start_without_its_public_url(tmp_path):
    # The audience would otherwise come from the caller's Host header.
    with pytest.raises(ConfigError, match="CDS_PUBLIC_BASE_URL"):
        create_app(environ={"CDS_VAR_DIR": str(tmp_path)})


def test_app_with_only_its_public_url_requires_auth_and_trusts_nobody(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="spine_cds.auth"):
        # no CDS_AUTH, no CDS_TRUSTED_ISSUERS
        app = create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_PUBLIC_BASE_URL": "http://localhost"})
    assert app.config["CDS"]["AUTH"] == "required"
    warnings = [r for r in caplog.records if r.name == "spine_cds.auth"]
    assert len(warnings) == 1 and "CDS_TRUSTED_ISSUERS" in warnings[0].getMessage()
    client = app.test_client()
    response = client.get(DISCOVERY_PATH, headers=bearer(token("http://localhost/cds-services")))
    assert response.status_code == 401 and response.get_json() == auth.UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get(DISCOVERY_PATH).status_code == 401
    preflight = client.options(SERVICE_PATH, headers={"Origin": "https://sandbox.cds-hooks.org",
                                                      "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200


def test_auth_off_checks_nothing(tmp_path):
    client = create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_AUTH": "off"}).test_client()
    assert client.get(DISCOVERY_PATH).status_code == 200


def test_static_issuer_through_the_test_client(tmp_path):
    trusted = tmp_path / "trusted.json"
    write_json(trusted, {EHR: {"jwks": EHR_JWKS}})
    client = create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_TRUSTED_ISSUERS": str(trusted),
                                 "CDS_JWT_LEEWAY": "0", "CDS_PUBLIC_BASE_URL": "http://localhost"}).test_client()
    assert client.get(DISCOVERY_PATH, headers=bearer(token("http://localhost/cds-services"))).status_code == 200
    now = int(time.time())
    late = token("http://localhost/cds-services", iat=now - 300, exp=now - 10)  # within 60 s, not within 0 s
    assert client.get(DISCOVERY_PATH, headers=bearer(late)).status_code == 401


BAD_ISSUER_FILES = {
    "not json": ("{not json", "not valid JSON"),
    "an array": ("[]", "expected an object"),
    "neither jwks nor jwks_url": (json.dumps({EHR: {"jwks_uri": "https://x"}}), "exactly one of"),
    "both jwks and jwks_url": (json.dumps({EHR: {"jwks": EHR_JWKS, "jwks_url": "https://x"}}), "exactly one of"),
    "jwks not a set": (json.dumps({EHR: {"jwks": [EHR_JWKS["keys"][0]]}}), '"keys" array'),
    "key without kid": (json.dumps({EHR: {"jwks": {"keys": [ec_jwk(EC_KEY, "x") | {"kid": None}]}}}), "kid"),
    "symmetric key": (json.dumps({EHR: {"jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}}}), "kty"),
    "http jwks_url": (json.dumps({EHR: {"jwks_url": "http://ehr.example.org/jwks"}}), "https"),
    "relative jwks_url": (json.dumps({EHR: {"jwks_url": "/jwks.json"}}), "https"),
}


@pytest.mark.parametrize("case", list(BAD_ISSUER_FILES))
def test_unusable_issuers_file_stops_the_start(tmp_path, case):
    content, words = BAD_ISSUER_FILES[case]
    trusted = tmp_path / "trusted.json"
    trusted.write_text(content)
    with pytest.raises(ConfigError) as error:
        create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_TRUSTED_ISSUERS": str(trusted)})
    assert str(trusted) in str(error.value) and words in str(error.value)


def test_missing_issuers_file_stops_the_cli_with_its_name(tmp_path):
    env = {**os.environ, "CDS_AUTH": "required", "CDS_VAR_DIR": str(tmp_path),
           "CDS_TRUSTED_ISSUERS": str(tmp_path / "missing.json")}
    done = subprocess.run([sys.executable, "-m", "cds_service", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "missing.json" in done.stderr and "cannot read" in done.stderr


def test_missing_issuers_file_is_ignored_when_auth_is_off(tmp_path):
    environ = {"CDS_VAR_DIR": str(tmp_path), "CDS_AUTH": "off", "CDS_TRUSTED_ISSUERS": str(tmp_path / "missing.json")}
    assert create_app(environ=environ).test_client().get(DISCOVERY_PATH).status_code == 200


@pytest.mark.parametrize("origins", ["https://*.example.org", "ehr.example.org", "https://ehr.example.org/path", " , "])
def test_bad_cors_origin_stops_the_start(tmp_path, origins):
    with pytest.raises(ConfigError, match="CDS_CORS_ORIGINS"):
        create_app(environ={"CDS_VAR_DIR": str(tmp_path), "CDS_AUTH": "off", "CDS_CORS_ORIGINS": origins})


def test_replay_store_forgets_expired_tokens(database_url):
    store = Store(database_url)
    assert store.remember_jti(EHR, "a", 1_000, forget_before=0)
    assert not store.remember_jti(EHR, "a", 1_000, forget_before=0)  # replay
    assert store.remember_jti(IDP, "a", 1_000, forget_before=0)  # the key is (iss, jti)
    assert store.remember_jti(EHR, "b", 5_000, forget_before=2_000)  # deletes the rows that expired before 2000
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(jwt_replay.c.iss, jwt_replay.c.jti)).all() == [(EHR, "b")]
    store.dispose()
