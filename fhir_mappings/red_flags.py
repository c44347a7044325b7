"""Conditions and reports -> red flags that waive the conservative-care wait
(Aetna CPB 0743, BCBSA 7.01.141, MP-517: cauda equina, progressive motor deficit,
fracture, tumour, infection, myelopathy)."""
from __future__ import annotations

import re

from terminology import valuesets
from terminology.phrases import compile_phrases
from terminology.systems import ICD10CM

from .facts import Evidence, RedFlag
from .negation import asserted_valueset_mentions
from .text import document
from .text.rules import load_text_data
from .dates import parse_date
from .resources import array, clinical_period, codings, concept_texts, is_inactive, narrative_texts, note_texts, obj, reference

RED_FLAG_SETS = ("cauda_equina", "progressive_motor_deficit", "spinal_fracture", "spinal_tumor",
                 "spinal_infection", "myelopathy")
_RED_FLAG_SETS = frozenset(RED_FLAG_SETS)
_DETAILS = load_text_data("red_flag_details.yaml")
_REGIONS = {region: compile_phrases(words) for region, words in _DETAILS["regions"].items()}
_QUALIFIERS = {name: compile_phrases(_DETAILS[name]) for name in ("healed", "acute", "unstable")}
_MOTOR_GRADE = re.compile(_DETAILS["motor_grade"])


def _code_details(code: str) -> tuple[str | None, str | None]:
    """(region, encounter) an ICD-10-CM code states: M47.12 cervical; S32.011A lumbar, initial encounter."""
    code = code.upper()
    region = next((r for prefix, r in _DETAILS["icd10_region_prefixes"].items() if code.startswith(prefix)), None)
    if region is None and code[:3] in _DETAILS["icd10_site_categories"] and len(code) > 5:
        region = _DETAILS["icd10_site_digits"].get(code[5])
    encounter = _DETAILS["icd10_encounter"].get(code[7]) if code[0] == "S" and len(code) == 8 else None
    return region, encounter


def _details(texts, codes) -> dict:
    """Region, qualifiers and the lowest motor grade that the flag's own words and codes state."""
    words = " ".join(t for t in texts if t)
    regions = {r for r, pattern in _REGIONS.items() if pattern and pattern.search(words)}
    qualifiers = {q for q, pattern in _QUALIFIERS.items() if pattern and pattern.search(words)}
    for code in codes:
        region, encounter = _code_details(code)
        regions |= {region} if region else set()
        qualifiers |= {"acute"} if encounter == "acute" else {"healed"} if encounter == "healed" else set()
    grades = [int(g) for g in _MOTOR_GRADE.findall(words)]
    return {"regions": frozenset(regions), "qualifiers": frozenset(qualifiers),
            "motor_grade": min(grades) if grades else None}


def _asserted_in_text(texts) -> list[tuple[str, str, str]]:
    """(red flag, the words naming it, the sentence read) of every red flag the texts assert as present."""
    found = []
    for text in texts:
        for name, start, end in asserted_valueset_mentions(text):
            if name in _RED_FLAG_SETS:
                lo, hi = document(text).sentence(start, end)
                found.append((name, text[start:end], " ".join(text[lo:hi].split())))
    return found


def red_flags_of(resource: dict) -> list[RedFlag]:
    """The red flags one resource asserts."""
    rtype = resource.get("resourceType")
    if rtype in ("ExplanationOfBenefit", "Claim"):
        return _billed_red_flags(resource)
    if rtype not in ("Condition", "Observation", "DiagnosticReport", "DocumentReference"):
        return []
    if rtype == "Condition" and is_inactive(resource):
        return []
    kinds: dict[str, tuple[str, str | None]] = {}
    own: list[str] = []          # a problem-list entry's words are all about its flag
    codes = [code for system, code in codings(resource, "code") if system == ICD10CM]
    if rtype == "Condition":
        own = list(concept_texts(resource, "code")) + list(note_texts(resource))
        for system, code in codings(resource, "code"):
            for name in valuesets.match_coding(system, code) & _RED_FLAG_SETS:
                kinds.setdefault(name, (f"{code} {next(concept_texts(resource, 'code'), '')}".strip(), None))
        for name, phrase, quote in _asserted_in_text(concept_texts(resource, "code")):
            kinds.setdefault(name, (phrase, quote))
    for name, phrase, quote in _asserted_in_text(narrative_texts(resource)):
        kinds.setdefault(name, (phrase, quote))
    if not kinds:
        return []
    start, _ = clinical_period(resource)
    return [RedFlag(name, Evidence(reference(resource), description, start, quote=quote),
                    **_details(own + [description, quote or ""], codes if rtype == "Condition" else ()))
            for name, (description, quote) in kinds.items()]


def _billed_red_flags(claim: dict) -> list[RedFlag]:
    """A payer holds a visit's diagnoses on its claim (ExplanationOfBenefit.diagnosis, CARIN BB): a billed
    diagnosis is asserted for that visit, dated by the claim's service period."""
    diagnoses = [d.get("diagnosisCodeableConcept") for d in array(claim.get("diagnosis")) if isinstance(d, dict)]
    holder = {"code": [d for d in diagnoses if isinstance(d, dict)]}
    kinds: dict[str, str] = {}
    codes = [code for system, code in codings(holder, "code") if system == ICD10CM]
    for system, code in codings(holder, "code"):
        for name in valuesets.match_coding(system, code) & _RED_FLAG_SETS:
            kinds.setdefault(name, f"{code} {next(concept_texts(holder, 'code'), '')}".strip() + " (billed diagnosis)")
    if not kinds:
        return []
    day = _billed_day(claim)
    return [RedFlag(name, Evidence(reference(claim), description, day, source="diagnosis"),
                    **_details([description], codes))
            for name, description in kinds.items()]


def _billed_day(claim: dict):
    period = obj(claim.get("billablePeriod"))
    for value in (period.get("start"), *(obj(i).get("servicedDate") for i in array(claim.get("item"))), claim.get("created")):
        day = parse_date(value) if isinstance(value, str) else None
        if day:
            return day
    return None


def map_red_flags(resources) -> tuple[RedFlag, ...]:
    return tuple(flag for resource in resources for flag in red_flags_of(resource))
