"""The application factory: the only place that wires the app."""
from __future__ import annotations

import logging
import re

from flask import Flask
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from . import auth
from . import config as config_module
from .config import ConfigError
from .errors import ServiceError

log = logging.getLogger("spine_cds")


def create_app(overrides: dict | None = None, environ: dict | None = None) -> Flask:
    cfg = config_module.load(environ, overrides)
    app = Flask(__name__)
    app.config["CDS"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg["MAX_BODY_BYTES"]
    app.json.sort_keys = False

    from . import health, hooks, metrics
    from .fhir_client import FhirClient
    from .persistence import Store
    from criteria import engine
    from criteria.spec import load_profile, profile_ids

    from . import data_files

    if cfg["PROFILE"] not in profile_ids() and not data_files.problems():
        raise ConfigError(f"CDS_PROFILE={cfg['PROFILE']!r} is not a known profile; known: {', '.join(profile_ids())}")
    try:
        engine.check_registry(load_profile(cfg["PROFILE"]))
    except Exception:   # a broken install starts unready (/readyz names the file), it does not crash-loop
        log.exception("the rules do not load: the service is not ready (see GET /readyz)")
    app.extensions["store"] = Store(cfg["DATABASE_URL"])  # also brings the schema to the newest migration
    # create_app() as `serve` calls it: workers share their metrics (see metrics.py); tests pass arguments.
    app_metrics = metrics.init_app(app, multiprocess_mode=environ is None and not overrides)
    app.extensions["fhir_client"] = FhirClient(
        timeout=(cfg["FHIR_CONNECT_TIMEOUT"], cfg["FHIR_READ_TIMEOUT"]), max_pages=cfg["FHIR_MAX_PAGES"],
        max_bytes=cfg["FHIR_MAX_BYTES"], max_workers=cfg["FHIR_MAX_WORKERS"])
    app.extensions["fhir_client"].on_fetch = app_metrics.record_fhir_fetch  # prefetch.py reports each fetch
    app.register_blueprint(hooks.bp)
    app.register_blueprint(health.bp)
    from . import openapi; app.register_blueprint(openapi.bp)  # GET /openapi.json
    from . import forms_api
    app.register_blueprint(forms_api.bp)
    from . import review; app.register_blueprint(review.bp)  # POST /review: the review letter
    from . import sandbox; sandbox.init_app(app)  # /sandbox page and API unless CDS_SANDBOX=off
    _init_cors(app, cfg["CORS_ORIGINS"])
    auth.init_app(app)
    _register_error_handlers(app)
    return app


def _init_cors(app: Flask, setting: str) -> None:
    """CORS for browser CDS clients (the sandbox). flask-cors answers preflights through Flask's
    automatic OPTIONS, which auth.py never authenticates; 401s carry the CORS headers too, so a
    browser client can see why its call failed."""
    origins = [o.strip() for o in setting.split(",") if o.strip()]
    for origin in origins:
        # Exact origins only: flask-cors would take a string with regex characters as a pattern.
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?", origin):
            raise ConfigError(f"CDS_CORS_ORIGINS: {origin!r} is not '*' or an origin like https://ehr.example.org")
    if not origins:
        raise ConfigError("CDS_CORS_ORIGINS is empty: use '*' or a comma-separated list of origins")
    CORS(app, resources=r"/cds-services(/.*)?$", origins="*" if "*" in origins else origins, send_wildcard=True,
         allow_headers=["Authorization", "Content-Type"], methods=["GET", "POST", "OPTIONS"], always_send=False)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        return exc.to_json(), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep routing's 404/405 and Werkzeug's 413, but answer JSON rather than an HTML page.
        body = ServiceError(exc.description or exc.name).to_json()
        body["error"] = exc.name.lower().replace(" ", "-")
        # Keep Werkzeug's headers (Allow on a 405) except its HTML content type.
        return body, exc.code, [h for h in exc.get_headers() if h[0].lower() != "content-type"]

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return {"error": "internal", "message": "internal error; the service logged it"}, 500
