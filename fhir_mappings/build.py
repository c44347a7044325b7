"""Chart -> Facts in one pass over the patient's resources.

Why one pass and a pre-filter (speed only: the facts are exactly those of the map_* functions).
An order-sign answer must come back within seconds (we aim for <= 1 s with JSON and HTTP) and a
real chart holds ~10,000 resources, mostly vitals, problems and visit notes that name nothing
these mappers look for; reading every text with every matcher took ~1.75 s at that size. So:
* one loop hands each resource to every mapper (care_of, red_flags_of, level_facts_of,
  measurements_of, diagnoses_of), so its texts are tokenised once (valuesets.text_tokens, cached)
  and every mapper's filter reuses the tokens while they are hot;
* each matcher first asks a PhraseGate (terminology.valuesets) whether all the words of one of
  its phrases stand in the text; a text without any skips the regex, sentence, level and
  negation work. The gate is a superset by construction; tests/test_facts_prefilter.py holds it
  to every phrase of the terminology data files and to the unfiltered readers;
* pure text -> result readers are cached by text (bounded lru_cache): charts repeat notes. The
  caches hold clinical text, so they are emptied when build_facts returns: reuse stays within one
  chart and no patient's text outlives its request (CRD sec-6: keep data only for audit).
Measured by benchmarks/profile_facts.py.
"""
from __future__ import annotations

import orjson

from terminology.valuesets import text_tokens

from .attachments import attachment_texts, forget_chart, read_chart, use_texts
from .care import _asserted_care, care_of
from .care_sources import medication_index
from .chart import Chart
from .clinical import SENTENCE_READS, clinical_facts_of, read_text as _read_clinical
from .dates import DATE_FIELDS, PERIOD_FIELDS, _parse as _parse_date, date_problems
from .diagnoses import diagnoses_of
from .facts import Facts, Order
from .forked_reading import CHARS_PER_UNIT, read_split
from .level_facts import _read_cached, level_facts_of, order_level_facts
from .measures import _name_of_label, _read_text, derive_mismatches, measurements_of
from .negation import asserted_valueset_mentions, valueset_mentions
from .orders import map_orders
from .red_flags import red_flags_of
from .text import SENTENCE_ASSERTIONS, document
from .resources import DOCUMENT_TYPES, forget_narrative, is_refuted, narrative_sources, remember_narrative


TEXT_CACHES = (text_tokens, valueset_mentions, asserted_valueset_mentions, document, _parse_date, _asserted_care, _read_cached, _read_text, _name_of_label, _read_clinical,
               SENTENCE_READS, SENTENCE_ASSERTIONS)


def forget_texts() -> None:
    for cached in TEXT_CACHES:
        cached.cache_clear()
    forget_chart()
    forget_narrative()


def build_facts(chart: Chart, orders: tuple[Order, ...] | None = None) -> Facts:
    """orders: the already-mapped draft orders, when the caller mapped them first."""
    try:
        return _build(chart, orders)
    finally:
        forget_texts()


def _build(chart: Chart, orders: tuple[Order, ...] | None) -> Facts:
    orders = map_orders(chart.draft_orders) if orders is None else orders
    # Every note and report body is decoded once here; the mappers below read it from there.
    resources = [r for r in chart.resources if not is_refuted(r)]
    unreadable = read_chart(resources)
    remember_narrative()
    medications = medication_index(chart.resources)

    def read(indices: list[int]) -> list[tuple[int, tuple]]:
        return _read(resources, medications, indices)

    def ship(indices: list[int]):
        """The part a reading partner reads (forked_reading): these resources and their decoded texts."""
        return _read_shipped, (indices, [resources[i] for i in indices],
                               [attachment_texts(resources[i]) for i in indices], medications)

    care, red_flags, level_facts, measured, diagnoses, unread, clinical = [], [], [], [], [], [], []
    units = [_reading_units(r) for r in resources]
    for index, found in read_split(read, units, [u > 1.0 for u in units], ship=ship):
        # A fact dated by a malformed date is reported; a resource that gives no fact is not checked.
        unread += date_problems(resources[index])
        care += found[0]
        red_flags += found[1]
        level_facts += found[2]
        measured += found[3]
        diagnoses += found[4]
        clinical += found[5]
    return Facts(
        orders=orders,
        care=tuple(care),
        red_flags=tuple(red_flags),
        today=chart.today,
        unavailable=chart.unavailable + tuple(u.render() for u in unreadable),
        level_facts=tuple(level_facts + order_level_facts(chart.draft_orders)),
        measurements=tuple(measured + derive_mismatches(measured)),
        diagnoses=tuple(diagnoses),
        unread=tuple(unread),
        clinical=tuple(clinical),
        birth_date=_birth_date(chart),
    )


def _read(resources, medications: dict, indices) -> list[tuple[int, tuple]]:
    """(index, facts by mapper) of each of these resources that gives any."""
    found, silent = [], set()     # reading keys of resources that gave no fact
    for index in indices:
        resource = resources[index]
        key = reading_key(resource)
        if key is not None and key in silent:
            continue
        read = (care_of(resource, medications), red_flags_of(resource), level_facts_of(resource),
                measurements_of(resource), diagnoses_of(resource), clinical_facts_of(resource))
        if any(read):
            found.append((index, read))
        elif key is not None:
            silent.add(key)
    return found


def _read_shipped(part) -> list[tuple[int, tuple]]:
    """_read of a part sent to a reading partner: the texts decoded in the worker stand for its
    resources' attachments, as read_chart's would; every text cache is emptied before the answer."""
    indices, resources, texts, medications = part
    use_texts(dict(zip(map(id, resources), texts)))
    remember_narrative()
    try:
        return _read(dict(zip(indices, resources)), medications, indices)
    finally:
        forget_texts()


# Most of a real chart is vital signs, labs, problems and visits that state nothing the mappers look
# for, many alike but for their dates (4,000 blood pressures, 60 distinct values). For these types a
# resource's id, narrative, identifiers and the values of its dates only label the facts read from it
# (Evidence's reference and day); whether there are any is decided by the rest, and by which dates
# are given. So a resource whose rest is that of one that gave no fact gives none, and is not read
# again. (Not for the care sources (care_sources.SOURCE_TYPES), whose courses are made of their dates.)
_KEYED_TYPES = frozenset({"Observation", "Condition", "DiagnosticReport", "Procedure"})
_LABEL_FIELDS = frozenset({"id", "meta", "text", "identifier"})
_DATE_FIELDS = frozenset(DATE_FIELDS + PERIOD_FIELDS + ("effectiveInstant", "abatementDateTime", "abatementPeriod"))
_KEY_CHANGES = _LABEL_FIELDS | _DATE_FIELDS


def _date_shape(value):
    """A date field as given, not which day it names (nor whether that day parses: a malformed date is
    reported only for a resource that gives facts, date_problems)."""
    if isinstance(value, str):
        return "date"
    if isinstance(value, dict):
        return {field: "date" if isinstance(part, str) else part for field, part in value.items()}
    return value


def reading_key(resource: dict) -> bytes | None:
    """What decides whether a resource of a keyed type gives facts, as bytes; None: read it.
    (Fields in the order sent: an EHR sends its resources alike, and a miss only costs a reading.)"""
    if resource.get("resourceType") not in _KEYED_TYPES:
        return None
    kept = resource
    present = resource.keys() & _KEY_CHANGES
    if present:
        kept = dict(resource)
        for field in present:
            if field in _LABEL_FIELDS:
                del kept[field]
            else:
                kept[field] = _date_shape(kept[field])
    try:
        return orjson.dumps(kept)
    except TypeError:
        return None


def _reading_units(resource: dict) -> float:
    """The work of reading a resource, for splitting a chart's reading (forked_reading): 1, and its
    documents' text (already decoded) by its length; more than 1 only for a document with text."""
    if resource.get("resourceType") not in DOCUMENT_TYPES:
        return 1.0
    return 1.0 + sum(len(text) for _, text in narrative_sources(resource)) / CHARS_PER_UNIT


def _birth_date(chart: Chart):
    patient = next((r for r in chart.resources if r.get("resourceType") == "Patient" and r.get("id") == chart.patient_id),
                   None)
    return _parse_date(patient.get("birthDate")) if patient and isinstance(patient.get("birthDate"), str) else None
