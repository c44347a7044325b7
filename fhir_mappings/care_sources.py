"""Non-operative care kept where EHRs and payers keep it, as the same CareEpisodes as Procedures:

* Encounter: an ambulatory, finished visit whose type, serviceType, location or participant
  marks physical therapy is one PT visit (its period's start);
* ExplanationOfBenefit / Claim (CARIN Blue Button): each service line with a PT, injection or
  medication code is one episode on its service date (servicedDate, servicedPeriod, else the
  claim's billablePeriod);
* QuestionnaireResponse to the service's own `spine-pt-course` form: the course it states;
* MedicationRequest / MedicationStatement with the medication coded, named, referenced or
  contained: a medication trial by ingredient class, dated when taken (effective[x]; a
  statement's dateAsserted only when that is missing);
* a completed ServiceRequest whose code is conservative care.

Every episode keeps its resource reference, the date it counts from, the words it was read from
(`Evidence.quote`) and where in the resource (`Evidence.source`).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from terminology.care_sources import (
    claim_code_systems,
    claim_medication_systems,
    encounter_vocabulary,
    medication_class_in_text,
    medication_class_of_rxcui,
    questionnaire,
    sources,
)
from terminology.conservative_care import care_kind_of_cpt, care_kinds, care_kinds_in_text
from terminology.systems import CPT, RXNORM

from .dates import parse_date
from .facts import CareEpisode, Evidence
from .resources import array, clinical_period, codings, concept_texts, obj, reference

SOURCE_TYPES = frozenset({"Encounter", "ExplanationOfBenefit", "Claim", "QuestionnaireResponse",
                          "MedicationRequest", "MedicationStatement", "ServiceRequest"})


def medication_index(resources) -> dict[str, dict]:
    """'Medication/<id>' → the chart's Medication resources, for medicationReference."""
    return {f"Medication/{r['id']}": r for r in resources
            if isinstance(r, dict) and r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)}


def care_sources_of(resource: dict, medications: Mapping[str, dict] | None = None) -> list[CareEpisode]:
    rtype = resource.get("resourceType")
    if rtype == "Encounter":
        return _encounter(resource)
    if rtype in ("ExplanationOfBenefit", "Claim"):
        return _claim_lines(resource)
    if rtype == "QuestionnaireResponse":
        return _pt_course_answers(resource)
    if rtype in ("MedicationRequest", "MedicationStatement"):
        episode = medication_episode(resource, medications or {})
        return [episode] if episode else []
    if rtype == "ServiceRequest":
        return _completed_request(resource)
    return []


def _status(resource: dict) -> str | None:
    """The resource's status when it is a code (a string): a malformed one matches no status list, and is
    never looked up in a set (a dict there is a TypeError, a client's bad data a 500)."""
    status = resource.get("status")
    return status if isinstance(status, str) else None


def _kind_names(kind: str) -> str:
    return next((k.title for k in care_kinds() if k.name == kind), kind.replace("_", " "))


# -- encounters -------------------------------------------------------------------------------
def _encounter_class(resource: dict) -> str:
    value = resource.get("class")
    concepts = value if isinstance(value, list) else [value]   # R4 Coding, R5 CodeableConcept list
    for concept in concepts:
        concept = obj(concept)
        for coding in [concept, *array(concept.get("coding"))]:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return coding["code"]
    return ""


def _pt_marker(resource: dict) -> tuple[str, str] | None:
    """(where, words) of what marks the encounter as physical therapy."""
    vocabulary = encounter_vocabulary()
    for field in ("type", "serviceType"):
        for system, code in codings(resource, field):
            if (system, code) in vocabulary.pt_codes or (system in (CPT, None) and care_kind_of_cpt(code) == "physical_therapy"):
                return field, next(concept_texts(resource, field), code)
        for text in concept_texts(resource, field):
            if vocabulary.names_pt(text):
                return field, text
    for index, item in enumerate(array(resource.get("location"))):
        display = obj(obj(item).get("location")).get("display")
        if isinstance(display, str) and vocabulary.names_pt(display):
            return f"location[{index}]", display
    for index, item in enumerate(array(resource.get("participant"))):
        item = obj(item)
        display = obj(item.get("individual") or item.get("actor")).get("display")
        if isinstance(display, str) and vocabulary.names_pt(display):
            return f"participant[{index}]", display
        for system, code in codings(item, "type"):
            if (system, code) in vocabulary.pt_codes:
                return f"participant[{index}].type", code
    service_provider = obj(resource.get("serviceProvider")).get("display")
    if isinstance(service_provider, str) and vocabulary.names_pt(service_provider):
        return "serviceProvider", service_provider
    return None


def _encounter(resource: dict) -> list[CareEpisode]:
    vocabulary = encounter_vocabulary()
    if _status(resource) not in vocabulary.statuses or _encounter_class(resource).lower() not in vocabulary.ambulatory:
        return []
    marker = _pt_marker(resource)
    if marker is None:
        return []
    period = obj(resource.get("period") or resource.get("actualPeriod"))
    day = parse_date(period.get("start")) or parse_date(period.get("end"))
    if day is None:
        return []
    where, words = marker
    return [CareEpisode("physical_therapy", day, day,
                        Evidence(reference(resource), f"PT visit (Encounter: {words})", day, words, where))]


# -- claims ------------------------------------------------------------------------------------
def _line_dates(item: dict, claim: dict) -> tuple[date | None, date | None]:
    day = parse_date(item.get("servicedDate"))
    if day:
        return day, day
    for holder in (obj(item.get("servicedPeriod")), obj(claim.get("billablePeriod"))):
        start, end = parse_date(holder.get("start")), parse_date(holder.get("end"))
        if start or end:
            return start or end, end or start
    day = parse_date(claim.get("created"))
    return day, day


def _claim_lines(resource: dict) -> list[CareEpisode]:
    spec = sources()["claims"]
    if _status(resource) not in spec["statuses"] or resource.get("outcome") in spec["outcomes_not_paid"]:
        return []
    episodes = []
    for index, item in enumerate(array(resource.get("item"))):
        item = obj(item)
        concept = obj(item.get("productOrService"))
        label = next(concept_texts(item, "productOrService"), "")
        kind, quote = None, label
        for system, code in codings(item, "productOrService"):
            if system in claim_code_systems() or system is None:
                kind = care_kind_of_cpt(code)
                if kind:
                    quote = f"{code} {label}".strip()
                    break
            if system in claim_medication_systems():
                med = medication_class_of_rxcui(code) if system == RXNORM else None
                named = medication_class_in_text(label) if label else None
                if med or named:
                    kind, quote = "medication", f"{(med or named[0]).title}: {label or code}"
                    break
        if kind is None and isinstance(concept.get("text"), str):
            named = medication_class_in_text(concept["text"])
            kind, quote = ("medication", f"{named[0].title}: {concept['text']}") if named else (None, quote)
        if kind is None:
            continue
        start, end = _line_dates(item, resource)
        if start is None:
            continue
        count = obj(item.get("quantity")).get("value")
        what = f"{_kind_names(kind)} claim line" + (f", {count:g} unit(s)" if isinstance(count, (int, float)) else "")
        episodes.append(CareEpisode(kind, start, end, Evidence(reference(resource), f"{what}: {quote}", start, quote,
                                                               f"item[{index}]")))
    return episodes


# -- the service's own PT form ---------------------------------------------------------------
def _answers(items, found: dict[str, object]) -> None:
    for item in array(items):
        item = obj(item)
        link = item.get("linkId")
        for answer in array(item.get("answer")):
            answer = obj(answer)
            for field in ("valueDate", "valueDateTime", "valueInteger", "valueBoolean", "valueString"):
                if field in answer and isinstance(link, str):
                    found.setdefault(link, answer[field])
            _answers(answer.get("item"), found)
        _answers(item.get("item"), found)


def _is_form(resource: dict, form: dict) -> bool:
    value = resource.get("questionnaire")
    if not isinstance(value, str):
        return False
    canonical = value.split("|")[0].rstrip("/")
    return any(canonical == c or canonical.endswith("/" + c) for c in form["canonical"])


def _pt_course_answers(resource: dict) -> list[CareEpisode]:
    form = questionnaire("spine-pt-course")
    if _status(resource) not in ("completed", "amended") or not _is_form(resource, form):
        return []
    found: dict[str, object] = {}
    _answers(resource.get("item"), found)
    start, end = parse_date(found.get(form["start"])), parse_date(found.get(form["end"]))
    if start is None or end is None or end < start:
        return []
    visits, weekly = found.get(form["visits"]), found.get(form["weekly"])
    provider = found.get(form["provider"])
    quote = (f"first visit {start.isoformat()}, last visit {end.isoformat()}"
             + (f", {visits} visits" if isinstance(visits, int) else "")
             + (", weekly" if weekly is True else "")
             + (f", {provider}" if isinstance(provider, str) and provider else ""))
    evidence = Evidence(reference(resource), f"PT course answered on the spine-pt-course form: {quote}", start,
                        quote, "item")
    if weekly is True:
        return [CareEpisode("physical_therapy", start, end, evidence, period=True)]
    # Without a visit every week the form gives the first and the last visit only: the gap rule decides.
    return [CareEpisode("physical_therapy", start, start, evidence),
            CareEpisode("physical_therapy", end, end, Evidence(evidence.reference, evidence.description, end,
                                                               quote, "item"))]


# -- medications -------------------------------------------------------------------------------
def _medication_of(resource: dict, medications: Mapping[str, dict]) -> tuple[dict, str]:
    """(the Medication resource or the resource itself, where its name is) for a request/statement."""
    if resource.get("medicationCodeableConcept"):
        return resource, "medicationCodeableConcept"
    ref = obj(resource.get("medicationReference")).get("reference")
    if isinstance(ref, str) and ref.startswith("#"):
        for contained in array(resource.get("contained")):
            if obj(contained).get("resourceType") == "Medication" and f"#{obj(contained).get('id')}" == ref:
                return contained, "contained Medication"
    elif isinstance(ref, str):
        key = "/".join(ref.split("/_history")[0].rstrip("/").split("/")[-2:])
        if key in medications:
            return medications[key], ref
    return {}, "medicationReference"


def _medication_names(resource: dict, medication: dict) -> list[str]:
    names = list(concept_texts(medication, "code", "medicationCodeableConcept"))
    for ingredient in array(medication.get("ingredient")):
        names += list(concept_texts(obj(ingredient), "itemCodeableConcept"))
        names += [d for d in [obj(obj(ingredient).get("itemReference")).get("display")] if isinstance(d, str)]
    display = obj(resource.get("medicationReference")).get("display")
    return names + ([display] if isinstance(display, str) else [])


def _medication_dates(resource: dict) -> tuple[date | None, date | None]:
    if resource.get("resourceType") == "MedicationStatement":
        start, end = clinical_period({k: v for k, v in resource.items() if k.startswith("effective")})
        if start is None:
            start = end = parse_date(resource.get("dateAsserted"))
        return start, end
    return clinical_period(resource)


_NOT_TAKEN = frozenset({"not-taken", "intended", "on-hold", "stopped-before-start"})


def medication_episode(resource: dict, medications: Mapping[str, dict]) -> CareEpisode | None:
    """A medication trial: RxNorm ingredient class where coded, else the class its name says;
    other pain medication named in conservative-care vocabulary counts without a class."""
    if _status(resource) in _NOT_TAKEN:
        return None
    medication, where = _medication_of(resource, medications)
    names = _medication_names(resource, medication)
    found = None
    quote = names[0] if names else ""
    for system, code in codings(medication, "code", "medicationCodeableConcept"):
        if system == RXNORM and (found := medication_class_of_rxcui(code)):
            quote = quote or f"RxNorm {code}"
            break
    if found is None:
        for name in names:
            hit = medication_class_in_text(name)
            if hit:
                found, quote = hit[0], name
                break
    if found is None and not any(kind == "medication" for name in names for kind, _ in care_kinds_in_text(name)):
        return None
    start, end = _medication_dates(resource)
    label = quote or "medication"
    description = f"{found.title} trial: {label}" if found else label
    if start is None:
        description += ", no date recorded"
    is_period = start is not None and end is not None and end != start
    # An active prescription or statement with no end: the patient is still on it (the course goes on to the order).
    ongoing = resource.get("status") == "active" and start is not None and not is_period
    return CareEpisode("medication", start, end if start else None,
                       Evidence(reference(resource), description, start, quote or None, where), period=is_period,
                       ongoing=ongoing)


# -- completed orders ----------------------------------------------------------------------------
def _completed_request(resource: dict) -> list[CareEpisode]:
    if _status(resource) not in sources()["service_request"]["statuses"]:
        return []
    kind = None
    for system, code in codings(resource, "code"):
        if system in (CPT, None) or system in claim_code_systems():
            kind = care_kind_of_cpt(code)
            if kind:
                break
    names = list(concept_texts(resource, "code"))
    if kind is None:
        kind = next((k for name in names for k, _ in care_kinds_in_text(name)), None)
    if kind is None:
        return []
    start, end = clinical_period({k: v for k, v in resource.items() if k.startswith("occurrence")})
    if start is None:
        return []   # a completed referral without the date of the care tells no duration
    label = names[0] if names else _kind_names(kind)
    return [CareEpisode(kind, start, end, Evidence(reference(resource), f"completed order: {label}", start, label, "code"),
                        period=end != start)]
