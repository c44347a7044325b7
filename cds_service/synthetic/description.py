"""What a coded chart says, read back as clinical facts, so that every shape renders the same ones.

The scenarios write one clinical description in the coded shape (charts.py); the EHR and payer
renderers read it here: which Procedures are physical-therapy visits, injections or past surgery,
which medication names an RxNorm ingredient, what a Condition's ICD-10-CM code is in SNOMED CT.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import date
from functools import cache
from importlib import resources

from terminology.conservative_care import care_kind_of_cpt

from .builders import CPT, ICD10

SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
# Epic-style local code systems (urn:oid under Epic's root): EHRs send their own codes beside standard ones.
LOCAL_DIAGNOSIS = "urn:oid:1.2.840.114350.1.13.999.2.7.2.728286"
LOCAL_PROCEDURE = "urn:oid:1.2.840.114350.1.13.999.2.7.2.696580"
LOCAL_MEDICATION = "urn:oid:1.2.840.114350.1.13.999.2.7.2.698288"
LOCAL_VISIT_TYPE = "urn:oid:1.2.840.114350.1.13.999.2.7.10.698084.30"

# ICD-10-CM codes the scenarios use, in SNOMED CT (problem lists carry both): the concepts of
# terminology/data/valuesets.json, so no code here is one the service has not been told about.
SNOMED_OF_ICD10 = {
    "M43.16": ("274152003", "Spondylolisthesis (disorder)"),
    "M48.062": ("18347007", "Lumbar spinal stenosis"),
    "M46.1": ("1303820006", "Arthritis of sacroiliac joint (disorder)"),
    "G83.4": ("192970008", "Cauda equina syndrome"),
}
# CPT of the injections the scenarios name, by the words of their name.
INJECTION_CPT = (("sacroiliac", "27096", "Injection procedure for sacroiliac joint, anesthetic/steroid, with image guidance"),
                 ("epidural", "62323", "Injection, interlaminar epidural, lumbar or sacral, with imaging guidance"))


def local_code(text: str) -> str:
    """A stable number standing for an EHR's own code for text."""
    return str(int(hashlib.sha1(text.lower().encode()).hexdigest()[:8], 16) % 900000 + 100000)


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def us_date(day: str) -> str:
    """'2025-04-07' as US notes write it, '4/7/2025'."""
    d = date.fromisoformat(day[:10])
    return f"{d.month}/{d.day}/{d.year}"


def day_of(resource: dict, *fields: str) -> str | None:
    for field in fields:
        value = resource.get(field)
        if isinstance(value, str):
            return value[:10]
    return None


def cpt_of(resource: dict) -> str | None:
    return next((c["code"] for c in resource.get("code", {}).get("coding", []) if c.get("system") == CPT), None)


def icd10_of(condition: dict) -> str | None:
    return next((c["code"] for c in condition.get("code", {}).get("coding", []) if c.get("system") == ICD10), None)


def procedure_kind(procedure: dict) -> str:
    """physical_therapy, injection or surgery: how each shape records the procedure."""
    code = cpt_of(procedure)
    if code and care_kind_of_cpt(code) == "physical_therapy":
        return "physical_therapy"
    text = procedure["code"].get("text", "").lower()
    if "injection" in text or "block" in text:
        return "injection"
    return "surgery"


def injection_cpt(procedure: dict) -> tuple[str, str] | None:
    text = procedure["code"].get("text", "").lower()
    return next(((code, display) for word, code, display in INJECTION_CPT if word in text), None)


@cache
def _ingredients() -> dict[str, str]:
    path = resources.files("terminology").joinpath("data", "medication_classes.json")
    classes = json.loads(path.read_text("utf-8"))["classes"]
    return {name: rxcui for spec in classes.values() for name, rxcui in spec.get("ingredients", {}).items()}


def rxnorm_of(text: str) -> str | None:
    """The RxNorm ingredient concept a medication's name starts with ('meloxicam 15 mg tablet')."""
    words = text.lower().split()
    return _ingredients().get(words[0]) if words else None


def pt_visits(chart: list[dict]) -> list[dict]:
    return sorted((r for r in chart if r["resourceType"] == "Procedure" and procedure_kind(r) == "physical_therapy"),
                  key=lambda r: r.get("performedDateTime", ""))


def order_day(orders: list[dict]) -> str:
    return min(o["authoredOn"][:10] for o in orders)
