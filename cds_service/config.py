"""Configuration: defaults, then CDS_* environment variables, then a test dict (flaskr's layering)."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "AUTH": "required",              # CDS_AUTH: required | off
    "TRUSTED_ISSUERS": None,         # CDS_TRUSTED_ISSUERS: path of the issuer -> JWKS file
    "PUBLIC_BASE_URL": None,         # CDS_PUBLIC_BASE_URL: base URL clients call (JWT aud behind a proxy)
    "JWT_LEEWAY": 60,                # CDS_JWT_LEEWAY: seconds of clock skew allowed on exp/iat/nbf
    "JWKS_TIMEOUT": 3.0,             # CDS_JWKS_TIMEOUT: seconds to fetch an issuer's jwks_url
    "JWKS_CACHE_SECONDS": 300,       # CDS_JWKS_CACHE_SECONDS: how long a fetched JWKS is used before refetching
    "JWKS_MIN_REFETCH_SECONDS": 10.0,  # CDS_JWKS_MIN_REFETCH_SECONDS: at most one fetch per issuer per this (per worker)
    "CORS_ORIGINS": "*",             # CDS_CORS_ORIGINS: comma-separated allowed origins, or *
    "DATABASE_URL": None,            # CDS_DATABASE_URL: SQLAlchemy URL; None -> SQLite under var/
    "PROFILE": "nass-2014",          # CDS_PROFILE: default payer profile of thresholds
    "MAX_BODY_BYTES": 20_000_000,    # CDS_MAX_BODY_BYTES: larger request bodies get 413
    "FHIR_CONNECT_TIMEOUT": 2.0,     # seconds
    "FHIR_READ_TIMEOUT": 5.0,        # seconds
    "FHIR_MAX_PAGES": 20,
    "FHIR_MAX_BYTES": 20_000_000,
    "FHIR_MAX_WORKERS": 8,
    "VAR_DIR": "var",                # CDS_VAR_DIR: where the default SQLite file lives
    "COVERAGE_INFORMATION": "optional",  # CDS_COVERAGE_INFORMATION: required (CRD payer) | optional | off
    "PAYER_IDS": "",                 # CDS_PAYER_IDS: comma-separated payer identifiers served; empty: any
    "SANDBOX": "on",                 # CDS_SANDBOX: on | off (off: every /sandbox path answers 404)
    "PAYER_DATA": "off",             # CDS_PAYER_DATA: on (a payer's deployment: prefetch and read
                                     # ExplanationOfBenefit and Claim service lines) | off
}

_INTS = {"MAX_BODY_BYTES", "FHIR_MAX_PAGES", "FHIR_MAX_BYTES", "FHIR_MAX_WORKERS", "JWT_LEEWAY", "JWKS_CACHE_SECONDS"}
_FLOATS = {"FHIR_CONNECT_TIMEOUT", "FHIR_READ_TIMEOUT", "JWKS_TIMEOUT", "JWKS_MIN_REFETCH_SECONDS"}
_NON_NEGATIVE = {"JWT_LEEWAY", "JWKS_TIMEOUT", "JWKS_CACHE_SECONDS", "JWKS_MIN_REFETCH_SECONDS"}


class ConfigError(ValueError):
    pass


def load(environ: dict | None = None, overrides: dict | None = None) -> dict:
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for key in DEFAULTS:
        value = environ.get(f"CDS_{key}")
        if value is None or value == "":
            continue
        try:
            config[key] = int(value) if key in _INTS else float(value) if key in _FLOATS else value
        except ValueError as exc:
            raise ConfigError(f"CDS_{key}={value!r} is not a number") from exc
    config.update(overrides or {})
    if config["COVERAGE_INFORMATION"] not in ("required", "optional", "off"):
        raise ConfigError(f"CDS_COVERAGE_INFORMATION must be required, optional or off, not {config['COVERAGE_INFORMATION']!r}")
    if config["PAYER_DATA"] not in ("on", "off"):
        raise ConfigError(f"CDS_PAYER_DATA must be 'on' or 'off', not {config['PAYER_DATA']!r}")
    if config["AUTH"] not in ("required", "off"):
        raise ConfigError(f"CDS_AUTH must be 'required' or 'off', not {config['AUTH']!r}")
    for key in _NON_NEGATIVE:
        if config[key] < 0:
            raise ConfigError(f"CDS_{key} must not be negative, not {config[key]!r}")
    if not config["DATABASE_URL"]:
        var_dir = Path(config["VAR_DIR"]).resolve()
        try:
            var_dir.mkdir(parents=True, exist_ok=True)
            writable = os.access(var_dir, os.W_OK)   # False on a read-only file system, even for root
        except OSError:
            writable = False
        if not writable:
            raise ConfigError(f"cannot write the default SQLite database under {var_dir} (read-only or not a folder): "
                              "set CDS_DATABASE_URL to a writable database, or CDS_VAR_DIR to a writable folder")
        config["DATABASE_URL"] = f"sqlite:///{var_dir / 'spine-cds.sqlite3'}"
    return config
