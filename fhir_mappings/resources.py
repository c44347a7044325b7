"""Small typed readers over plain-dict FHIR resources: references, codings, texts, dates.

The chart is read as dicts, never through fhir.resources models: validating a whole
prefetch costs ~0.35 ms per resource and rejects real EHR data (deps.md section 1-2).
"""
from __future__ import annotations

import contextvars
from datetime import date
from functools import lru_cache
from typing import Iterator

from terminology.systems import UnknownCodeSystem, resolve_system

from .dates import parse_date


def array(value) -> list:
    """A FHIR array field as a list: [] when absent or when the JSON holds something else there."""
    return value if isinstance(value, list) else []


def obj(value) -> dict:
    """A FHIR complex-type field as a dict: {} when absent or when the JSON holds something else there."""
    return value if isinstance(value, dict) else {}


def reference(resource: dict) -> str:
    return f"{resource.get('resourceType', 'Resource')}/{resource.get('id', '?')}"


def _concepts(resource: dict, *fields: str) -> Iterator[dict]:
    for field in fields:
        value = resource.get(field)
        if isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, dict))


@lru_cache(maxsize=1024)
def _system(system: str) -> str:
    """The canonical URI of a system; a local system is kept as sent (it matches no value set).
    Cached: a chart names a handful of systems thousands of times."""
    try:
        return resolve_system(system)
    except UnknownCodeSystem:
        return system


def codings(resource: dict, *fields: str) -> Iterator[tuple[str | None, str]]:
    """(canonical system or None, code) of every coding in the named CodeableConcept fields."""
    for concept in _concepts(resource, *fields):
        for coding in array(concept.get("coding")):
            if not isinstance(coding, dict):
                continue
            code = coding.get("code")
            if not isinstance(code, str):
                continue
            system = coding.get("system")
            yield (_system(system) if isinstance(system, str) else None), code.strip()


def concept_texts(resource: dict, *fields: str) -> Iterator[str]:
    for concept in _concepts(resource, *fields):
        if isinstance(concept.get("text"), str):
            yield concept["text"]
        for coding in array(concept.get("coding")):
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                yield coding["display"]


def note_texts(resource: dict) -> list[str]:
    return [note["text"] for note in array(resource.get("note"))
            if isinstance(note, dict) and isinstance(note.get("text"), str)]


_NARRATIVE_FIELDS = ("valueString", "conclusion", "performedString", "description")


# Within one chart (fhir_mappings.build) every mapper asks for the same resources' narrative: it is
# gathered once per resource. Keyed by id(), the resource kept alongside so the id stays its own.
_SOURCES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("spine_cds_narrative", default=None)


def remember_narrative() -> None:
    _SOURCES.set({})


def forget_narrative() -> None:
    _SOURCES.set(None)


def narrative_sources(resource: dict) -> list[tuple[str, str]]:
    """(where in the resource, text) of the free text a clinician wrote on it: notes, string values,
    report conclusions, and the bodies of clinical documents (note attachments, report presentedForm)
    one section at a time, line breaks kept. Never a title (a report's code, a note's type or
    description): a title names what was looked for, not what was found ("XR SCOLIOSIS SURVEY")."""
    memo = _SOURCES.get()
    if memo is None:
        return _narrative_sources(resource)
    kept = memo.get(id(resource))
    if kept is None or kept[0] is not resource:
        kept = memo[id(resource)] = (resource, tuple(_narrative_sources(resource)))
    return list(kept[1])


def _narrative_sources(resource: dict) -> list[tuple[str, str]]:
    found = [(f"note[{i}]", note["text"]) for i, note in enumerate(array(resource.get("note")))
             if isinstance(note, dict) and isinstance(note.get("text"), str)]
    is_document = resource.get("resourceType") in DOCUMENT_TYPES
    for field in _NARRATIVE_FIELDS:
        value = resource.get(field)
        if isinstance(value, str) and not (is_document and field == "description"):  # a document's title
            found.append((field, value))
    for i, component in enumerate(array(resource.get("component"))):
        if isinstance(component, dict) and isinstance(component.get("valueString"), str):
            found.append((f"component[{i}].valueString", component["valueString"]))
    if is_document:
        found += [(document.source, block) for document in attachment_texts(resource) for block in document.blocks]
    return found


def narrative_texts(resource: dict) -> list[str]:
    """The texts of narrative_sources."""
    return [text for _, text in narrative_sources(resource)]


DOCUMENT_TYPES = ("DocumentReference", "DiagnosticReport")


def _period(value) -> tuple[date | None, date | None]:
    if not isinstance(value, dict):
        return None, None
    return parse_date(value.get("start")), parse_date(value.get("end"))


def clinical_period(resource: dict) -> tuple[date | None, date | None]:
    """When the thing happened (start, end); end equals start for a point in time."""
    for field in ("performedDateTime", "effectiveDateTime", "onsetDateTime", "occurrenceDateTime"):
        day = parse_date(resource.get(field))
        if day:
            return day, day
    for field in ("performedPeriod", "effectivePeriod", "onsetPeriod", "occurrencePeriod"):
        start, end = _period(resource.get(field))
        if start or end:
            return start or end, end or start
    if resource.get("resourceType") == "MedicationRequest":
        start = parse_date(resource.get("authoredOn"))
        validity = obj(resource.get("dispenseRequest")).get("validityPeriod")
        v_start, v_end = _period(validity)
        start = start or v_start
        return start, v_end or start
    for field in ("issued", "recordedDate", "authoredOn", "date"):
        day = parse_date(resource.get(field))
        if day:
            return day, day
    return None, None


def is_refuted(resource: dict) -> bool:
    """Entered in error, refuted, or not done: the resource asserts nothing."""
    if resource.get("status") in ("entered-in-error", "not-done", "cancelled", "revoked"):
        return True
    if resource.get("verificationStatus") is None:
        return False        # the common case, without building the generators below
    for system, code in codings(resource, "verificationStatus"):
        if code in ("refuted", "entered-in-error"):
            return True
    return False


def is_inactive(resource: dict) -> bool:
    return any(code in ("inactive", "resolved", "remission") for _, code in codings(resource, "clinicalStatus"))



def attachment_texts(resource: dict):
    """attachments.attachment_texts, bound on first use: attachments.py imports this module."""
    global attachment_texts
    from .attachments import attachment_texts
    return attachment_texts(resource)
