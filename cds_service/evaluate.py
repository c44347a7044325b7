"""`spine-cds evaluate`: run the order-sign pipeline in-process on a request or a FHIR Bundle
file, and show the cards as a person reads them."""
from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

from . import config, discovery, order_sign
from .errors import ServiceError
from .synthetic.bundles import BundleError, request_from_bundle
from .validation import validate_order_sign

SERVICE_ID = "spine-surgery-order-sign"


class BadInput(ValueError):
    pass


def read_request(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        try:
            return request_from_bundle(data)
        except BundleError as exc:
            raise BadInput(f"{path}: {exc}") from None
    if isinstance(data, dict) and "hook" in data:
        return data
    raise BadInput(f"{path} is neither a CDS Hooks order-sign request (an object with 'hook' and 'context') "
                   "nor a FHIR Bundle")


def evaluate(request: dict, profile: str | None = None) -> dict:
    return _in_process(request, profile, lambda req, service, settings: order_sign.run(req, service, settings))


def review_letter(request: dict, profile: str | None = None) -> dict:
    """The review letter as data, from the same in-process pipeline."""
    from .review import review
    return _in_process(request, profile, lambda req, service, settings: review(req, settings))


def _in_process(request: dict, profile: str | None, run):
    if profile:
        extension = request.get("extension") if isinstance(request.get("extension"), dict) else {}
        request = {**request, "extension": {**extension, order_sign.PROFILE_EXTENSION: profile}}
    try:
        validate_order_sign(request)
        service = discovery.service(SERVICE_ID)
        if request["hook"] != service["hook"]:
            raise BadInput(f"{SERVICE_ID} answers the {service['hook']!r} hook, not {request['hook']!r}")
        # The feedback store is never used here; a throwaway VAR_DIR keeps ./var untouched.
        with tempfile.TemporaryDirectory() as var_dir:
            settings = config.load(overrides={"AUTH": "off", "VAR_DIR": var_dir})
            return run(request, service, settings)
    except ServiceError as exc:
        where = f" (at {exc.field})" if exc.field else ""
        raise BadInput(f"the request cannot be evaluated{where}: {exc.message}") from None


def render(answer: dict) -> str:
    cards = answer.get("cards") or []
    if not cards:
        return "No cards: nothing to check for these orders."
    blocks = []
    for card in cards:
        head = f"[{card['indicator'].upper()}] {card['source']['topic']['code']}: {card['summary']}"
        blocks.append(head + "\n" + textwrap.indent(card.get("detail", "").rstrip(), "    "))
    actions = answer.get("systemActions") or []
    if actions:
        blocks.append(f"{len(actions)} system action(s); --json shows them.")
    return "\n\n".join(blocks)
