"""What a coded imaging-finding Observation says beside the finding's name (its code, or its value
when the code is only "Finding"): where (bodySite, a location component), how much (interpretation,
a grade or severity component, a severity as the value), whether (an absent or negative value or
interpretation) and a translation in millimetres. The codes and names are terminology data
(terminology/data/imaging_observations.yaml); which finding it is stays the value sets' and the
text reader's (fhir_mappings/level_facts.py)."""
from __future__ import annotations

from dataclasses import dataclass

from terminology.imaging_observations import codes
from terminology.levels import Interspace, interspaces_in

from .resources import array, codings, concept_texts, obj

_MM_PER = {"mm": 1.0, "cm": 10.0}


@dataclass(frozen=True)
class CodedDetails:
    spaces: tuple[Interspace, ...] = ()     # the interspaces its body site or a location component names
    grades: tuple[str, ...] = ()            # words that may grade it: "Severe", "Grade 2", "moderate to severe"
    absent: bool = False                    # its value or interpretation says the named finding is absent
    translation_mm: float | None = None     # a translation it measures


def _name(part: dict) -> str:
    return " ".join(concept_texts(part, "code"))


def _value_texts(part: dict) -> list[str]:
    texts = list(concept_texts(part, "valueCodeableConcept"))
    if isinstance(part.get("valueString"), str):
        texts.append(part["valueString"])
    return texts


def _spaces(part: dict, *fields: str) -> list[Interspace]:
    table = codes()
    found = [space for text in concept_texts(part, *fields) for space in interspaces_in(text)]
    found += [space for system, code in codings(part, *fields) if (space := table.interspace(system, code))]
    return found


def _grade_words(part: dict, *fields: str) -> list[str]:
    table = codes()
    return [word for system, code in codings(part, *fields) if (word := table.severity(system, code))]


def _is_absent(part: dict, *fields: str) -> bool:
    table = codes()
    if any(table.says_absent(system, code) for system, code in codings(part, *fields)):
        return True
    texts = list(concept_texts(part, *fields))
    if "valueString" in fields and isinstance(part.get("valueString"), str):
        texts.append(part["valueString"])
    return any(table.absent_text.fullmatch(text) for text in texts)


def _millimetres(part: dict) -> float | None:
    quantity = obj(part.get("valueQuantity"))
    value = quantity.get("value")
    unit = str(quantity.get("code") or quantity.get("unit") or "").strip().lower()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and unit in _MM_PER:
        return float(value) * _MM_PER[unit]
    return None


def _grade_values(part: dict) -> list[str]:
    words = _value_texts(part) + _grade_words(part, "valueCodeableConcept")
    number = part.get("valueInteger")
    if isinstance(number, int) and not isinstance(number, bool):
        words.append(f"grade {number}")
    return words


def coded_details(resource: dict) -> CodedDetails:
    table = codes()
    spaces = _spaces(resource, "bodySite")
    grades = [*concept_texts(resource, "interpretation"), *_grade_words(resource, "interpretation", "valueCodeableConcept")]
    translation = _millimetres(resource) if table.translation_name.search(_name(resource)) else None
    for part in array(resource.get("component")):
        if not isinstance(part, dict) or part.get("dataAbsentReason") is not None:
            continue
        name = _name(part)
        if table.location_name.search(name):
            spaces += _spaces(part, "valueCodeableConcept")
            spaces += [s for text in _value_texts(part) for s in interspaces_in(text)]
        elif table.grade_name.search(name):
            grades += _grade_values(part)
        elif table.translation_name.search(name) and translation is None:
            translation = _millimetres(part)
    absent = _is_absent(resource, "interpretation") or _is_absent(resource, "valueCodeableConcept", "valueString")
    return CodedDetails(tuple(dict.fromkeys(spaces)), tuple(dict.fromkeys(grades)), absent, translation)
