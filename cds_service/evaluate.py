"""`spine-cds evaluate`: run the order-sign pipeline in-process on a request or a FHIR Bundle
file, and show the cards as a person reads them.

The tester's chart is read whole: claims it carries are read even where CDS_PAYER_DATA is off
(reads_payer_data), here and in the sandbox."""
from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from . import config, discovery, order_sign
from .errors import ServiceError
from .synthetic.bundles import BundleError, request_from_bundle
from .validation import validate_order_sign

SERVICE_ID = "spine-surgery-order-sign"


class BadInput(ValueError):
    pass


def reads_payer_data(request: dict, setting: str, shape: str | None = None) -> bool:
    """Whether an in-process evaluation (CLI, sandbox) reads a payer's claims, as a deployment with
    CDS_PAYER_DATA=on does: when that is on, when the tester picked the payer shape (its claims may sit
    on the fhirServer), or when the request's prefetch holds claims (a pasted payer Bundle holds
    ExplanationOfBenefits). A request without claims is read as the deployment reads it, so evaluating
    an EHR's request here never searches a fhirServer for claims it does not keep."""
    if setting == "on" or shape == "payer":
        return True
    prefetch = request.get("prefetch")
    return isinstance(prefetch, dict) and any(_holds_resources(prefetch.get(key)) for key in discovery.PAYER_KEYS)


def _holds_resources(value) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("resourceType") != "Bundle":
        return bool(value.get("resourceType"))
    entries = value.get("entry")
    return isinstance(entries, list) and any(isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries)


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
    return evaluation(request, profile).answer


def evaluation(request: dict, profile: str | None = None) -> order_sign.Evaluation:
    """The answer with the determinations behind it."""
    return _in_process(request, profile, lambda req, service, settings: order_sign.evaluate(req, service, settings))


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
        # The feedback store is never used here; a throwaway VAR_DIR keeps ./var untouched.
        with tempfile.TemporaryDirectory() as var_dir:
            settings = config.load(overrides={"AUTH": "off", "VAR_DIR": var_dir})
            if reads_payer_data(request, settings["PAYER_DATA"]):
                settings = {**settings, "PAYER_DATA": "on"}   # review() chooses its discovery from this too
            service = discovery.service(SERVICE_ID, settings["PAYER_DATA"] == "on")
            if request["hook"] != service["hook"]:
                raise BadInput(f"{SERVICE_ID} answers the {service['hook']!r} hook, not {request['hook']!r}")
            return run(request, service, settings)
    except ServiceError as exc:
        where = f" (at {exc.field})" if exc.field else ""
        raise BadInput(f"the request cannot be evaluated{where}: {exc.message}") from None


SYMBOL = {"meets": "✓", "does-not-meet": "✗", "needs-documentation": "?"}
STYLE = {"meets": "green", "does-not-meet": "red", "needs-documentation": "yellow",
         "warning": "yellow", "info": "cyan", "critical": "red"}


def render(result: order_sign.Evaluation, width: int = 100, color: bool = False) -> str:
    """A compact terminal view: the determination per order and CPT code, then the cards."""
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.panel import Panel
    from rich.table import Table

    from cards import wording

    console = Console(width=width, record=True, force_terminal=color, no_color=not color, file=io.StringIO())
    answer = result.answer
    if not result.determinations:
        console.print("No cards: nothing to check for these orders.")
        return console.export_text(styles=color)
    table = Table(title="Determinations", title_justify="left", show_lines=False, expand=True)
    table.add_column("Order", ratio=3)
    table.add_column("Determination", ratio=2)
    table.add_column("CPT codes", ratio=3)
    for d in result.determinations:
        codes = ", ".join(f"{c.code} {SYMBOL[c.determination]}" for c in d.codes)
        table.add_row(d.order.label, f"[{STYLE[d.determination]}]{SYMBOL[d.determination]} "
                      f"{wording.determination(d.determination)}[/]", codes)
    console.print(table)
    for card in answer.get("cards") or []:
        title = f"[{STYLE[card['indicator']]}]{card['indicator'].upper()}[/] {card['source']['topic']['code']}"
        body = Markdown(f"**{card['summary']}**\n\n{card.get('detail', '')}")
        console.print(Panel(body, title=title, title_align="left", expand=True))
    actions = answer.get("systemActions") or []
    if actions:
        console.print(f"{len(actions)} coverage-information update(s); --json shows them.")
    return console.export_text(styles=color)
