"""Probes for orchestrators and load balancers: GET /healthz (liveness) and GET /readyz (readiness).

Neither needs a client JWT (auth.py guards /cds-services paths only): probes carry no token.
- /healthz answers as long as the process serves HTTP. It never touches the database: a database
  outage must take replicas out of the load balancer (readiness), not get them all restarted.
- /readyz answers 200 when the database answers `SELECT 1`, the rules of every payer profile
  load and every data file an answer needs is there and parses (data_files.py), else 503 with the
  failing check named (for data files, the files themselves). Error details go to the log, not to the caller
  (a driver message can name hosts and users).
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app

from criteria import engine

from . import data_files
from criteria.spec import load_profile, profile_ids

log = logging.getLogger("spine_cds.health")

bp = Blueprint("health", __name__)
_NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}, 200, _NO_STORE


@bp.get("/readyz")
def readyz():
    checks = {"database": _database(), "rules": _rules(), "data": _data()}
    ready = all(result == "ok" for result in checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503, _NO_STORE


def _database() -> str:
    try:
        current_app.extensions["store"].ping()
    except Exception as exc:  # any driver error means "not ready"; the probe itself must not 500
        cause = exc.__cause__ or exc  # Store wraps driver errors in ServiceUnavailable
        log.warning("readiness: the database does not answer (%s)", type(cause).__name__)
        return f"failed ({type(cause).__name__})"
    return "ok"


def _rules() -> str:
    try:
        engine.check_registry(load_profile(current_app.config["CDS"]["PROFILE"]))
        for profile in profile_ids():  # a request may pick any profile
            load_profile(profile)
    except Exception as exc:  # a broken rule file, whatever the error type
        log.warning("readiness: the rules do not load: %s", exc)
        return f"failed ({type(exc).__name__})"
    return "ok"


def _data() -> str:
    found = data_files.problems()
    if found:
        log.warning("readiness: data files: %s", "; ".join(found))
        return "failed: " + "; ".join(found)   # file names inside the package: nothing secret
    return "ok"
