"""Prefetch hydrator: turns a CDS Hooks request's `prefetch` into the resources the rules read.

CDS Hooks 2.0 §Prefetch (see shared/research/cds-hooks-crd.md §1.5). For every declared key:

| prefetch value                                | what we do                                   | source        |
|-----------------------------------------------|----------------------------------------------|---------------|
| a resource                                    | use it                                       | "prefetch"    |
| a Bundle (searchset, collection, ...)         | use its entries; follow its `next` link when | "prefetch"    |
|                                               | there is a fhirServer                        |               |
| JSON null                                     | no data; no query                            | "null"        |
| an OperationOutcome, or a Bundle holding only | fetch again from fhirServer                  | "fhir-server" |
| OperationOutcome entries                      |                                              |               |
| key absent                                    | fetch from fhirServer                        | "fhir-server" |

A required key that needs fetching when the request has no fhirServer → `DataUnavailable` (412).
A fetch that fails (timeout, refused, 4xx/5xx, not FHIR, loop, too big) is logged and recorded in
`Hydrated.failures`; the caller answers 200 with a card saying what could not be checked.

Pure functions and small dataclasses; no Flask. Resources stay plain dicts.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import DataUnavailable, InvalidRequest
from .fhir_client import (
    FhirClient,
    FhirFetchError,
    bundle_link,
    bundle_outcomes,
    bundle_resources,
    outcome_text,
)

log = logging.getLogger(__name__)

SOURCE_PREFETCH = "prefetch"
SOURCE_SERVER = "fhir-server"
SOURCE_NULL = "null"


# -- policies -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrefetchPolicy:
    key: str
    template: str
    required: bool = True
    # Evidence beside the core chart (notes, encounters, claims, form answers): a request that
    # prefetches without it and names no fhirServer is evaluated on what it sent (the key lands in
    # Hydrated.skipped), as CDS clients that predate these keys always were.
    supplementary: bool = False


def policies_from_templates(
    templates: Mapping[str, str], required: Iterable[str] | None = None,
    supplementary: Iterable[str] = (),
) -> tuple[PrefetchPolicy, ...]:
    """One policy per template, in the templates' order.

    `required=None` makes every key required; otherwise only the keys listed are. Listing a key
    that has no template is a configuration error (ValueError), caught at start-up. A key listed in
    `supplementary` is never required.
    """
    extra = set(supplementary)
    required_keys = (set(templates) - extra) if required is None else set(required)
    unknown = sorted((required_keys | extra) - set(templates))
    if unknown:
        raise ValueError(f"prefetch keys without a template: {', '.join(unknown)}")
    return tuple(PrefetchPolicy(key, template, key in required_keys and key not in extra, key in extra)
                 for key, template in templates.items())


# -- templates ------------------------------------------------------------------------------
_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def render_template(template: str, context: Mapping[str, Any] | None) -> str | None:
    """Fill the prefetch tokens of `template` from the hook `context`; None if one cannot be filled.

    Legal tokens (CDS Hooks 2.0): `{{context.<field>}}` for a first-level field holding a
    non-empty string, an int or a bool; and `{{userPractitionerId}}`, `{{userPractitionerRoleId}}`,
    `{{userPatientId}}`, `{{userRelatedPersonId}}`, taken from `context.userId` ("Practitioner/abc")
    when it names that resource type. Values are URL-quoted. Anything else (`{{context.a.b}}`, the
    3.0 FHIRPath forms, a missing or empty field) cannot be resolved.
    """
    rendered, _ = _render(template, context or {})
    return rendered


def _render(template: str, context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(rendered, None) or (None, why it cannot be rendered)."""
    problems: list[str] = []

    def fill(match: re.Match) -> str:
        value, problem = _token_value(match.group(1), context)
        if problem:
            problems.append(problem)
            return ""
        return value

    rendered = _TOKEN.sub(fill, template)
    if problems:
        return None, problems[0]
    if "{{" in rendered or "}}" in rendered:
        return None, "the template has an unbalanced {{ }} token"
    return rendered, None


def _token_value(token: str, context: Mapping[str, Any]) -> tuple[str, str | None]:
    if token.startswith("context."):
        name = token[len("context."):]
        if not _FIELD.fullmatch(name):
            return "", f"the token {{{{{token}}}}} is not a first-level context field"
        value = context.get(name)
        if isinstance(value, bool):
            return ("true" if value else "false"), None
        if isinstance(value, int):
            return str(value), None
        if isinstance(value, str) and value.strip():
            return quote(value.strip(), safe=""), None
        if name not in context or value is None or value == "":
            return "", f"the request context has no {name}"
        return "", f"context.{name} is not a string, integer or boolean"
    if token in USER_TOKENS:
        user_id = _user_id(context.get("userId"), USER_TOKENS[token])
        if user_id is None:
            return "", f"context.userId is not a {USER_TOKENS[token]} reference (needed for {{{{{token}}}}})"
        return quote(user_id, safe=""), None
    return "", f"the token {{{{{token}}}}} is not supported"


def _user_id(user_ref: Any, resource_type: str) -> str | None:
    """'abc' from 'Practitioner/abc' (also from an absolute URL or a _history reference)."""
    if not isinstance(user_ref, str):
        return None
    segments = [s for s in user_ref.strip().split("/") if s]
    if len(segments) >= 4 and segments[-2] == "_history":
        segments = segments[:-2]
    if len(segments) >= 2 and segments[-2] == resource_type:
        return segments[-1]
    return None


# -- result ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hydrated:
    """What the rules get to read.

    resources: every declared key → its resources ([] for null, failed or skipped keys).
    failures:  key → why its data could not be (fully) obtained, e.g. "Condition search at the
               FHIR server timed out after 5.0 s". Never contains the access token.
    sources:   key → "prefetch" | "fhir-server" | "null", for keys whose data was obtained.
    skipped:   optional keys whose template cannot be filled from this request's context (e.g. a
               userPatientId token for a practitioner user) → why. Required keys go to failures.
    """

    resources: dict[str, list[dict]]
    failures: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failures

    def all_resources(self) -> list[dict]:
        """All resources, keys in declaration order, each resource (type + id) once."""
        out: list[dict] = []
        seen: set[tuple[str, str]] = set()
        for resources in self.resources.values():
            for res in resources:
                rtype, ident = res.get("resourceType"), res.get("id")
                if isinstance(rtype, str) and isinstance(ident, str):  # hostile JSON may hold lists here
                    marker = (rtype, ident)
                    if marker in seen:
                        continue
                    seen.add(marker)
                out.append(res)
        return out

    def of_type(self, resource_type: str) -> list[dict]:
        return [r for r in self.all_resources() if r.get("resourceType") == resource_type]


# -- hydrate --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    key: str
    kind: str  # "read" | "search" | "follow"
    label: str  # e.g. "Condition search"
    url: str | None = None
    bundle: dict | None = None
    note: str = ""  # appended to a failure, e.g. the OperationOutcome that caused a refetch


def hydrate(
    prefetch: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    policies: Iterable[PrefetchPolicy],
    *,
    fhir_server: str | None,
    access_token: str | None,
    client: FhirClient | None = None,
) -> Hydrated:
    """Resolve every policy key from `prefetch` or, failing that, from `fhir_server`.

    Raises DataUnavailable (412) when a required key needs fetching and there is no fhir_server,
    InvalidRequest (400) when `prefetch` or one of its values is not JSON a FHIR client could send.
    Fetch failures never raise: they land in `Hydrated.failures`. Fetches run concurrently (at
    most `client.max_workers` at once), each bounded by the client's timeouts. A client made here
    is closed here; a client passed in is left open (it may serve many requests).
    """
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, Mapping):
        raise InvalidRequest("prefetch must be a JSON object keyed by prefetch key", field="prefetch")
    context = context if isinstance(context, Mapping) else {}
    policies = tuple(policies)
    base = fhir_server.rstrip("/") if fhir_server else None

    resources: dict[str, list[dict]] = {p.key: [] for p in policies}
    sources: dict[str, str] = {}
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    jobs: list[_Job] = []
    absent: list[PrefetchPolicy] = []
    outcomes: dict[str, str] = {}  # key → text of the OperationOutcome the client sent instead of data

    for policy in policies:
        key = policy.key
        if key not in prefetch:
            absent.append(policy)
            continue
        value = prefetch[key]
        if value is None:
            sources[key] = SOURCE_NULL
            continue
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise InvalidRequest(
                f"prefetch.{key} must be a FHIR resource, a Bundle or null", field=f"prefetch.{key}"
            )
        if value["resourceType"] == "OperationOutcome":
            outcomes[key] = outcome_text(value)
            continue
        if value["resourceType"] != "Bundle":
            resources[key] = [value]
            sources[key] = SOURCE_PREFETCH
            continue
        data, errors = bundle_resources(value), bundle_outcomes(value)
        if errors and not data:
            outcomes[key] = "; ".join(outcome_text(o) for o in errors)
            continue
        resources[key] = data
        sources[key] = SOURCE_PREFETCH
        if bundle_link(value, "next"):
            label = f"{_template_type(policy.template)} search"
            if base:
                jobs.append(_Job(key, "follow", label, bundle=value, note="; only the prefetched first page was checked"))
            else:
                failures[key] = (
                    f"{label}: only the first page was prefetched and the request has no fhirServer "
                    "to fetch the other pages from"
                )

    to_fetch = [p for p in policies if p.key in outcomes or p in absent]
    if not base:
        required = [p.key for p in to_fetch if p.required]
        if required:
            raise DataUnavailable(_no_server_message(required, outcomes), field="prefetch")

    for policy in to_fetch:
        rendered, problem = _render(policy.template, context)
        key = policy.key
        if rendered is None:
            if policy.required:
                failures[key] = f"{_template_type(policy.template)} data cannot be fetched: {problem}"
            else:
                skipped[key] = problem or "the template cannot be filled"
            continue
        if not base:
            why = "not prefetched, and the request has no fhirServer to fetch it from"
            if policy.supplementary and key not in outcomes:
                skipped[key] = why
            else:
                failures[key] = why
            continue
        kind, resource_type = _kind(rendered)
        note = f" (the prefetched value was an OperationOutcome: {outcomes[key]})" if key in outcomes else ""
        url = f"{base}/{rendered.lstrip('/')}"
        for url in split_by_category(url) if kind == "search" else [url]:
            jobs.append(_Job(key, kind, f"{resource_type} {kind}", url=url, note=note))

    if jobs:
        _run_jobs(jobs, client, base, access_token, resources, sources, failures)

    for key, why in failures.items():
        log.warning("prefetch key %s: %s", key, why)
    return Hydrated(resources=resources, failures=failures, sources=sources, skipped=skipped)


def _run_jobs(
    jobs: list[_Job],
    client: FhirClient | None,
    base: str | None,
    token: str | None,
    resources: dict[str, list[dict]],
    sources: dict[str, str],
    failures: dict[str, str],
) -> None:
    own_client = client is None
    client = client or FhirClient()
    try:
        workers = max(1, min(client.max_workers, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fhir-prefetch") as pool:
            futures = [(job, pool.submit(_fetch, client, job, base, token)) for job in jobs]
            # The app sets client.on_fetch(key, "ok" | "failed") for its metrics; other clients lack it.
            on_fetch = getattr(client, "on_fetch", None) or (lambda key, outcome: None)
            fetched_keys: set[str] = set()
            for job, future in futures:
                try:
                    fetched = future.result()
                except FhirFetchError as err:
                    on_fetch(job.key, "failed")
                    failures[job.key] = f"{job.label} at the FHIR server {err.reason}{job.note}"
                    continue
                on_fetch(job.key, "ok")
                if job.kind == "follow":
                    resources[job.key] = resources[job.key] + fetched
                else:
                    # One key may be several searches (one per category): their results add up.
                    resources[job.key] = (resources[job.key] if job.key in fetched_keys else []) + fetched
                    fetched_keys.add(job.key)
                    sources[job.key] = SOURCE_SERVER
    finally:
        if own_client:
            client.close()


def _fetch(client: FhirClient, job: _Job, base: str | None, token: str | None) -> list[dict]:
    if job.kind == "read":
        return [client.read(job.url, access_token=token)]
    if job.kind == "search":
        return client.search(job.url, access_token=token, base=base)
    return client.follow(job.bundle, base=base, access_token=token)


def split_by_category(url: str) -> list[str]:
    """An Observation search with `category=a,b,c` as one search per category.

    Some EHRs refuse or cut an Observation search without one category (Epic asks for exactly
    one), so the fallback fetch asks for each; the results are the same as the OR search's.
    """
    head, has_query, query = url.partition("?")
    if not has_query or not head.rstrip("/").endswith("/Observation"):
        return [url]
    params = query.split("&")
    at = next((i for i, p in enumerate(params) if p.startswith("category=") and "," in p), None)
    if at is None:
        return [url]
    return [head + "?" + "&".join(params[:at] + [f"category={value}"] + params[at + 1:])
            for value in params[at][len("category="):].split(",") if value]


def _kind(rendered: str) -> tuple[str, str]:
    """("read"|"search", resource type) of a rendered template such as "Patient/1" or "Condition?…"."""
    path, has_query, _ = rendered.lstrip("/").partition("?")
    segments = [s for s in path.split("/") if s]
    resource_type = segments[0] if segments else "FHIR"
    is_read = not has_query and len(segments) == 2 and not segments[1].startswith(("$", "_"))
    return ("read" if is_read else "search"), resource_type


def _template_type(template: str) -> str:
    segment = template.lstrip("/").split("?")[0].split("/")[0]
    return segment if segment and "{" not in segment else "FHIR"


def _no_server_message(keys: list[str], outcomes: Mapping[str, str]) -> str:
    missing = [k for k in keys if k not in outcomes]
    failed = [k for k in keys if k in outcomes]
    parts = []
    if missing:
        parts.append(f"prefetch {_plural('key', missing)} {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
    if failed:
        texts = "; ".join(f"{k}: {outcomes[k]}" for k in failed)
        verb = "holds" if len(failed) == 1 else "hold"
        parts.append(f"prefetch {_plural('key', failed)} {', '.join(failed)} {verb} an OperationOutcome ({texts})")
    them = "it" if len(keys) == 1 else "them"
    return f"{' and '.join(parts)} and the request has no fhirServer to fetch {them} from"


def _plural(word: str, items: list) -> str:
    return word if len(items) == 1 else word + "s"
