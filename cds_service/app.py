"""The application factory: the only place that wires the app."""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import config as config_module
from .errors import ServiceError

log = logging.getLogger("spine_cds")


def create_app(overrides: dict | None = None, environ: dict | None = None) -> Flask:
    cfg = config_module.load(environ, overrides)
    app = Flask(__name__)
    app.config["CDS"] = cfg
    app.config["MAX_CONTENT_LENGTH"] = cfg["MAX_BODY_BYTES"]
    app.json.sort_keys = False

    from . import hooks
    from .fhir_client import FhirClient
    from .persistence import Store
    from criteria import engine
    from criteria.spec import load_profile

    engine.check_registry(load_profile(cfg["PROFILE"]))  # fail at start-up, not on the first order
    app.extensions["store"] = Store(cfg["DATABASE_URL"])
    app.extensions["fhir_client"] = FhirClient(
        timeout=(cfg["FHIR_CONNECT_TIMEOUT"], cfg["FHIR_READ_TIMEOUT"]), max_pages=cfg["FHIR_MAX_PAGES"],
        max_bytes=cfg["FHIR_MAX_BYTES"], max_workers=cfg["FHIR_MAX_WORKERS"])
    app.register_blueprint(hooks.bp)
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        return exc.to_json(), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep routing's 404/405 and Werkzeug's 413, but answer JSON rather than an HTML page.
        body = ServiceError(exc.description or exc.name).to_json()
        body["error"] = exc.name.lower().replace(" ", "-")
        return body, exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return {"error": "internal", "message": "internal error; the service logged it"}, 500
