"""The `payer` shape: a coded chart rendered as a payer's CRD server holds it: the member, the
plan (Coverage, its Organization), CARIN Blue Button ExplanationOfBenefits and the imaging report.

* diagnoses: ICD-10-CM codes on the claims (EOB.diagnosis), not Conditions;
* PT visits, injections and past surgery: professional EOBs, one CPT line per service date;
* medications: pharmacy EOBs, one RxNorm line per fill;
* imaging: the DiagnosticReport with its body as plain text in presentedForm;
* no notes and no examination: what a Condition's note, a Procedure's note or an exam Observation
  said is not on a claim, so a scenario that needs it has its own expected answer for this shape
  (scenarios.py, `shapes`).
"""
from __future__ import annotations

from datetime import date, timedelta

from . import description as d
from .builders import CPT, ICD10

CARIN = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
_C4BB = "http://hl7.org/fhir/us/carin-bb/CodeSystem/"
_CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
_ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
# A back-pain diagnosis for claims whose chart names no coded one (every CARIN EOB has a diagnosis).
LOW_BACK_PAIN = ("M54.50", "Low back pain, unspecified")
OFFICE_VISIT = ("99214", "Office or other outpatient visit, established patient, moderate complexity")


def _profile(name: str) -> dict:
    return {"profile": [CARIN + name], "lastUpdated": "2025-01-01T00:00:00Z"}


def organization(org_id: str, name: str, payer: bool) -> dict:
    """A US Core / C4BB Organization: identifier (NPI or payer id), active, name."""
    system = "https://spine-cds.dev/fhir/payer-id" if payer else "http://hl7.org/fhir/sid/us-npi"
    value = "SYNTH-HP" if payer else f"1{d.local_code(org_id)}000"
    return {"resourceType": "Organization", "id": org_id, "meta": {"profile": [CARIN + "C4BB-Organization"]},
            "identifier": [{"system": system, "value": value}], "active": True, "name": name}


def coverage(resource: dict, payer_id: str) -> dict:
    """US Core Coverage and C4BB Coverage: member identifier, type, subscriber, relationship, period,
    payor (an Organization), group class."""
    patient = resource["beneficiary"]
    return {"resourceType": "Coverage", "id": resource["id"], "meta": _profile("C4BB-Coverage"),
            "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                 "code": "MB"}]},
                            "system": "https://spine-cds.dev/fhir/member-id", "value": f"M-{resource['id']}"}],
            "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PPO",
                                 "display": "preferred provider organization policy"}], "text": "PPO"},
            "subscriberId": f"S-{resource['id']}", "beneficiary": patient,
            "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                                         "code": "self"}]},
            "period": {"start": "2020-01-01"},
            "payor": [{"reference": f"Organization/{payer_id}", "display": "Synthetic Health Plan"}],
            "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                            "code": "group"}]}, "value": "SYN-GROUP-1", "name": "Synthetic Group"}]}


FILL_DAYS = 30     # the days' supply of each pharmacy claim (its quantity and dayssupply)


class _Payer:
    def __init__(self, orders: list[dict], chart: list[dict]):
        self.chart = chart
        self.patient_id = next(r["id"] for r in chart if r["resourceType"] == "Patient")
        self.coverage_id = next(r["id"] for r in chart if r["resourceType"] == "Coverage")
        self.payer_id = f"payer-{self.coverage_id}"
        self.provider_id = f"provider-{self.coverage_id}"
        codes = [(d.icd10_of(c), c["code"]["text"]) for c in chart if c["resourceType"] == "Condition"]
        self.diagnoses = [(code, text) for code, text in codes if code] or [LOW_BACK_PAIN]
        self.signed = date.fromisoformat(d.order_day(orders))

    def eob(self, rid: str, lines: list[tuple[str, str, str, str]], kind: str = "professional",
            diagnoses: list[tuple[str, str]] | None = None) -> dict:
        """A C4BB ExplanationOfBenefit (professional non-clinician or pharmacy): lines of
        (system, code, display, service date)."""
        days = sorted(day for *_, day in lines)
        pharmacy = kind == "pharmacy"
        items = []
        for n, (system, code, display, day) in enumerate(lines, 1):
            item = {"sequence": n, "productOrService": {"coding": [{"system": system, "code": code, "display": display}],
                                                        "text": display},
                    "servicedDate": day, "quantity": {"value": FILL_DAYS if pharmacy else 1},
                    "adjudication": [_amount("submitted", 120.0), _amount("benefit", 90.0),
                                     {"category": {"coding": [{"system": _C4BB + "C4BBPayerAdjudicationStatus",
                                                               "code": "innetwork"}]}}]}
            if not pharmacy:
                item["diagnosisSequence"] = [1]
                item["locationCodeableConcept"] = {"coding": [{
                    "system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
                    "code": "11"}]}
            items.append(item)
        supporting = [{"sequence": 1, "category": {"coding": [{"system": _C4BB + "C4BBSupportingInfoType",
                                                               "code": "billingnetworkcontractingstatus"}]},
                       "code": {"coding": [{"system": _C4BB + "C4BBPayerAdjudicationStatus", "code": "contracted"}]}}]
        if pharmacy:
            supporting.append({"sequence": 2, "category": {"coding": [{"system": _C4BB + "C4BBSupportingInfoType",
                                                                       "code": "dayssupply"}]},
                               "valueQuantity": {"value": FILL_DAYS}})
        resource = {
            "resourceType": "ExplanationOfBenefit", "id": rid,
            "meta": _profile("C4BB-ExplanationOfBenefit-Pharmacy" if pharmacy
                             else "C4BB-ExplanationOfBenefit-Professional-NonClinician"),
            "identifier": [{"type": {"coding": [{"system": _C4BB + "C4BBIdentifierType", "code": "uc"}]},
                            "system": "https://spine-cds.dev/fhir/claim-id", "value": rid}],
            "status": "active",
            "type": {"coding": [{"system": _CLAIM_TYPE, "code": "pharmacy" if pharmacy else "professional"}]},
            "use": "claim", "patient": {"reference": f"Patient/{self.patient_id}"},
            "billablePeriod": {"start": days[0], "end": days[-1]}, "created": f"{days[-1]}T00:00:00Z",
            "insurer": {"reference": f"Organization/{self.payer_id}", "display": "Synthetic Health Plan"},
            "provider": {"reference": f"Organization/{self.provider_id}", "display": "Synthetic Spine and Rehab"},
            "outcome": "complete", "supportingInfo": supporting,
            "insurance": [{"focal": True, "coverage": {"reference": f"Coverage/{self.coverage_id}"}}],
            "item": items, "total": [_amount("submitted", 120.0 * len(items)), _amount("benefit", 90.0 * len(items))],
            "payment": {"date": days[-1], "amount": {"value": 90.0 * len(items), "currency": "USD"}}}
        if not pharmacy:
            resource["diagnosis"] = [
                {"sequence": n, "diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": code,
                                                                         "display": text}]},
                 "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                                       "code": "principal" if n == 1 else "secondary"}]}]}
                for n, (code, text) in enumerate(diagnoses or self.diagnoses, 1)]
        return resource

    # -- one resource at a time ---------------------------------------------------------------------
    def patient(self, resource: dict) -> list[dict]:
        member = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
                  "system": "https://spine-cds.dev/fhir/member-id", "value": f"M-{self.coverage_id}"}
        return [{**resource, "meta": {"profile": [CARIN + "C4BB-Patient"]}, "identifier": [member]}]

    def coverage(self, resource: dict) -> list[dict]:
        return [coverage(resource, self.payer_id), organization(self.payer_id, "Synthetic Health Plan", True),
                organization(self.provider_id, "Synthetic Spine and Rehab", False)]

    def condition(self, resource: dict) -> list[dict]:
        code = d.icd10_of(resource)
        onset = d.day_of(resource, "onsetDateTime")
        if not code or not onset:
            return []      # a diagnosis reaches a payer only coded, on the claim of a visit
        return [self.eob(f"{resource['id']}-eob", [(CPT, *OFFICE_VISIT, onset)],
                         diagnoses=[(code, resource["code"]["text"])])]

    def procedure(self, resource: dict) -> list[dict]:
        day = resource.get("performedDateTime", "")[:10]
        code = d.cpt_of(resource)
        display = resource["code"]["text"]
        if code is None and d.procedure_kind(resource) == "injection":
            code, display = d.injection_cpt(resource) or (None, display)
        if code is None or not day:
            return []      # a payer knows a service only by its billed code and date
        return [self.eob(f"{resource['id']}-eob", [(CPT, code, display, day)])]

    def medication(self, resource: dict) -> list[dict]:
        text = resource["medicationCodeableConcept"]["text"]
        rxcui = d.rxnorm_of(text)
        if rxcui is None:
            return []
        first = date.fromisoformat(resource["authoredOn"][:10])
        fills = [first]
        # A prescription still active (the patient is on it) is a fill every days' supply up to the order,
        # as the plan's pharmacy claims show it; a finished one, its one fill.
        while resource.get("status") == "active" and fills[-1] + timedelta(days=FILL_DAYS) < self.signed:
            fills.append(fills[-1] + timedelta(days=FILL_DAYS))
        return [self.eob(f"{resource['id']}-eob" + (f"-{n}" if n else ""), [(d.RXNORM, rxcui, text, day.isoformat())],
                         kind="pharmacy") for n, day in enumerate(fills)]

    def report(self, resource: dict) -> list[dict]:
        title, conclusion = resource["code"]["text"], resource["conclusion"]
        day = resource["effectiveDateTime"][:10]
        body = f"{title.upper()}\nFINDINGS:\n{conclusion}\nIMPRESSION:\n{conclusion}\n"
        return [{"resourceType": "DiagnosticReport", "id": resource["id"], "status": "final",
                 "category": [{"coding": [{"system": d.LOINC, "code": "LP29684-5", "display": "Radiology"}]}],
                 "code": {"text": title}, "subject": resource["subject"], "effectiveDateTime": day,
                 "issued": f"{day}T18:00:00Z",
                 "presentedForm": [{"contentType": "text/plain; charset=utf-8", "data": d.b64(body), "title": title}]}]


def _amount(category: str, value: float) -> dict:
    return {"category": {"coding": [{"system": _ADJUDICATION, "code": category}]},
            "amount": {"value": value, "currency": "USD"}}


def render(orders: list[dict], chart: list[dict]) -> tuple[list[dict], list[dict]]:
    payer = _Payer(orders, chart)
    by_type = {"Patient": payer.patient, "Coverage": payer.coverage, "Condition": payer.condition,
               "Procedure": payer.procedure, "MedicationRequest": payer.medication, "DiagnosticReport": payer.report}
    out: list[dict] = []
    for resource in chart:
        render_one = by_type.get(resource["resourceType"])
        out += render_one(resource) if render_one else []    # observations: not on a claim
    return orders, out
