"""The `ehr` shape: a coded chart rendered as a hospital EHR (Epic, Oracle Health) sends it over
US Core R4.

* Conditions: problem-list items (encounter diagnoses when days old) coded ICD-10-CM, SNOMED CT
  and a local code; what their notes said moves to the surgeon's H&P note;
* PT visits: finished ambulatory Encounters typed PT, and a PT discharge summary note;
* injections: a coded Procedure and a procedure note carrying the relief in prose;
* medications: MedicationStatements naming a referenced Medication coded RxNorm and locally;
* imaging: DiagnosticReports whose body is in presentedForm (HTML or plain text; every other one
  behind a Binary url) and whose IMPRESSION is a result Observation;
* observations written as prose (an examination) move to the H&P; scored ones stay.
"""
from __future__ import annotations

from datetime import date, timedelta

from . import description as d
from .builders import CPT, ICD10
from .payer import coverage, organization

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_NOTE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
_AMB = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"}
_VERIFIED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]}


def _profile(name: str) -> dict:
    return {"profile": [US_CORE + name]}


def _subject(chart_patient: str) -> dict:
    return {"reference": f"Patient/{chart_patient}"}


class _Ehr:
    def __init__(self, orders: list[dict], chart: list[dict]):
        self.orders, self.chart = orders, chart
        self.patient_id = next(r["id"] for r in chart if r["resourceType"] == "Patient")
        self.signed = d.order_day(orders)
        self.history: list[str] = []   # what the H&P's history says
        self.exam: list[str] = []      # what the H&P's examination says

    def note(self, rid: str, title: str, loinc: tuple[str, str], day: str, text: str, html: bool = False) -> dict:
        """A US Core DocumentReference holding the note as a base64 attachment."""
        content_type = "text/html" if html else "text/plain; charset=utf-8"
        return {"resourceType": "DocumentReference", "id": rid, "meta": _profile("us-core-documentreference"),
                "identifier": [{"system": "urn:oid:1.2.840.114350.1.13.999.2.7.2.727879", "value": rid}],
                "status": "current", "docStatus": "final",
                "type": {"coding": [{"system": d.LOINC, "code": loinc[0], "display": loinc[1]},
                                    {"system": d.LOCAL_PROCEDURE, "code": d.local_code(title), "display": title}],
                         "text": title},
                "category": [{"coding": [{"system": _NOTE_CATEGORY, "code": "clinical-note",
                                          "display": "Clinical Note"}]}],
                "subject": _subject(self.patient_id), "date": f"{day}T17:00:00Z",
                "author": [{"display": "Synthetic Spine Clinic"}],
                "content": [{"attachment": {"contentType": content_type, "data": d.b64(text), "title": title},
                             "format": {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                                        "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}}],
                "context": {"period": {"start": day, "end": day}}}

    # -- one resource at a time ---------------------------------------------------------------------
    def patient(self, resource: dict) -> list[dict]:
        return [{**resource, "meta": _profile("us-core-patient"),
                 "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                      "code": "MR"}]},
                                 "system": "urn:oid:1.2.840.114350.1.13.999.2.7.5.737384.14",
                                 "value": f"MRN-{resource['id']}"}]}]

    def coverage(self, resource: dict) -> list[dict]:
        payer_id = f"payer-{resource['id']}"
        return [coverage(resource, payer_id), organization(payer_id, "Synthetic Health Plan", True)]

    def condition(self, resource: dict) -> list[dict]:
        text = resource["code"]["text"]
        coding = []
        icd10 = d.icd10_of(resource)
        if icd10:
            coding.append({"system": ICD10, "code": icd10, "display": text})
            if icd10 in d.SNOMED_OF_ICD10:
                code, display = d.SNOMED_OF_ICD10[icd10]
                coding.append({"system": d.SNOMED, "code": code, "display": display})
        coding.append({"system": d.LOCAL_DIAGNOSIS, "code": d.local_code(text), "display": text})
        onset = d.day_of(resource, "onsetDateTime")
        recent = onset is not None and date.fromisoformat(self.signed) - date.fromisoformat(onset) <= timedelta(days=30)
        category, display = ("encounter-diagnosis", "Encounter Diagnosis") if recent else \
            ("problem-list-item", "Problem List Item")
        profile = "us-core-condition-encounter-diagnosis" if recent else "us-core-condition-problems-health-concerns"
        out = {"resourceType": "Condition", "id": resource["id"], "meta": _profile(profile),
               "clinicalStatus": resource["clinicalStatus"], "verificationStatus": _VERIFIED,
               "category": [{"coding": [{"system": _CONDITION_CATEGORY, "code": category, "display": display}]}],
               "code": {"coding": coding, "text": text}, "subject": resource["subject"],
               "recordedDate": onset or self.signed}
        if onset:
            out["onsetDateTime"] = onset
        self.history += [n["text"] for n in resource.get("note", [])]
        return [out]

    def procedure(self, resource: dict) -> list[dict]:
        kind = d.procedure_kind(resource)
        if kind == "physical_therapy":
            return []          # all visits together: pt_course
        text = resource["code"]["text"]
        coding = [c for c in resource["code"].get("coding", []) if c.get("system") == CPT]
        injection = d.injection_cpt(resource) if kind == "injection" else None
        if injection and not coding:
            coding.append({"system": CPT, "code": injection[0], "display": injection[1]})
        coding.append({"system": d.LOCAL_PROCEDURE, "code": d.local_code(text), "display": text})
        out = {"resourceType": "Procedure", "id": resource["id"], "meta": _profile("us-core-procedure"),
               "status": "completed", "code": {"coding": coding, "text": text}, "subject": resource["subject"],
               "performedDateTime": resource["performedDateTime"]}
        notes = [n["text"] for n in resource.get("note", [])]
        if not notes:
            return [out]
        day = resource["performedDateTime"][:10]
        body = (f"PROCEDURE NOTE\nProcedure: {text}, performed {d.us_date(day)} under fluoroscopic guidance.\n"
                f"POST-PROCEDURE ASSESSMENT:\n" + "\n".join(notes) + "\nThe patient tolerated the procedure well.")
        note = self.note(f"{resource['id']}-note", f"Procedure note: {text}", ("28570-0", "Procedure note"), day, body)
        return [out, note]

    def medication(self, resource: dict) -> list[dict]:
        text = resource["medicationCodeableConcept"]["text"]
        coding = [{"system": d.LOCAL_MEDICATION, "code": d.local_code(text), "display": text.upper()}]
        rxcui = d.rxnorm_of(text)
        if rxcui:
            coding.insert(0, {"system": d.RXNORM, "code": rxcui, "display": text.split()[0]})
        medication = {"resourceType": "Medication", "id": f"{resource['id']}-medication",
                      "code": {"coding": coding, "text": text}}
        started = resource["authoredOn"][:10]
        statement = {"resourceType": "MedicationStatement", "id": resource["id"], "status": "active",
                     "medicationReference": {"reference": f"Medication/{medication['id']}", "display": text},
                     "subject": resource["subject"], "effectivePeriod": {"start": started},
                     "dateAsserted": f"{self.signed}T09:00:00Z",
                     "informationSource": {"display": "Synthetic Spine Clinic"}}
        return [medication, statement]

    def report(self, resource: dict) -> list[dict]:
        title, conclusion = resource["code"]["text"], resource["conclusion"]
        day = resource["effectiveDateTime"][:10]
        impression = {"resourceType": "Observation", "id": f"{resource['id']}-impression",
                      "meta": _profile("us-core-observation-clinical-result"), "status": "final",
                      "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                "code": "imaging", "display": "Imaging"}]}],
                      "code": {"coding": [{"system": d.LOINC, "code": "19005-8",
                                           "display": "Radiology Imaging study [Impression] (narrative)"}],
                               "text": "IMPRESSION"},
                      "subject": resource["subject"], "effectiveDateTime": day, "valueString": conclusion}
        # MRI bodies come as HTML, radiographs as plain text kept in a Binary (Oracle Health's
        # presentedForm.url), so both forms and both places appear across the scenarios.
        as_html = title.upper().startswith("MRI")
        body = (f"<html><body><h3>{title.upper()}</h3><p>EXAM DATE: {d.us_date(day)}</p>"
                f"<p>HISTORY: Low back pain.</p><h4>FINDINGS</h4><p>{conclusion}</p>"
                f"<h4>IMPRESSION</h4><ol><li>{conclusion}</li></ol></body></html>") if as_html else \
            (f"{title.upper()}\nEXAM DATE: {d.us_date(day)}\nHISTORY: Low back pain.\nFINDINGS:\n{conclusion}\n"
             f"IMPRESSION:\n1. {conclusion}\n")
        content_type = "text/html" if as_html else "text/plain; charset=utf-8"
        out = {"resourceType": "DiagnosticReport", "id": resource["id"], "meta": _profile("us-core-diagnosticreport-note"),
               "status": "final",
               "category": [{"coding": [{"system": d.LOINC, "code": "LP29684-5", "display": "Radiology"}],
                             "text": "Radiology"}],
               "code": {"coding": [{"system": d.LOCAL_PROCEDURE, "code": d.local_code(title), "display": title.upper()}],
                        "text": title},
               "subject": resource["subject"], "effectiveDateTime": day, "issued": f"{day}T18:00:00Z",
               "resultsInterpreter": [{"display": "Synthetic Radiology Group"}],
               "result": [{"reference": f"Observation/{impression['id']}", "display": "IMPRESSION"}]}
        if title.upper().startswith("XR"):
            binary = {"resourceType": "Binary", "id": f"{resource['id']}-body", "contentType": content_type,
                      "data": d.b64(body)}
            out["presentedForm"] = [{"contentType": content_type, "url": f"Binary/{binary['id']}", "title": title}]
            return [out, impression, binary]
        out["presentedForm"] = [{"contentType": content_type, "data": d.b64(body), "title": title}]
        return [out, impression]

    def observation(self, resource: dict) -> list[dict]:
        if "valueString" in resource:
            self.exam.append(f"{resource['code']['text']}: {resource['valueString']}")
            return []
        return [{**resource, "meta": _profile("us-core-observation-clinical-result")}]

    # -- the whole chart ----------------------------------------------------------------------------
    def pt_course(self) -> list[dict]:
        visits = d.pt_visits(self.chart)
        out = []
        for visit in visits:
            day = visit["performedDateTime"][:10]
            label = "PT Evaluation" if d.cpt_of(visit) == "97161" else "PT Visit"
            out.append({"resourceType": "Encounter", "id": f"{visit['id']}-enc", "meta": _profile("us-core-encounter"),
                        "identifier": [{"system": "urn:oid:1.2.840.114350.1.13.999.2.7.3.698084.8",
                                        "value": visit["id"]}],
                        "status": "finished", "class": _AMB,
                        "type": [{"coding": [{"system": d.SNOMED, "code": "91251008",
                                              "display": "Physical therapy procedure"},
                                             {"system": d.LOCAL_VISIT_TYPE, "code": d.local_code(label),
                                              "display": label}], "text": label}],
                        "subject": visit["subject"],
                        "participant": [{"individual": {"display": "Synthetic Therapist, PT, DPT"}}],
                        "period": {"start": f"{day}T09:00:00-05:00", "end": f"{day}T09:50:00-05:00"},
                        "location": [{"location": {"display": "Outpatient Rehab - Physical Therapy"}}]})
        if visits:
            first, last = (visits[0]["performedDateTime"][:10], visits[-1]["performedDateTime"][:10])
            day = (date.fromisoformat(last) + timedelta(days=1)).isoformat()
            text = (f"PHYSICAL THERAPY DISCHARGE SUMMARY\nDiagnosis: low back pain.\n"
                    f"Patient attended {len(visits)} PT visits from {d.us_date(first)} to {d.us_date(last)}, "
                    f"with therapeutic exercise and a home exercise program.\n"
                    f"STATUS AT DISCHARGE: goals partially met.\nPLAN: continue home exercise program.")
            out.append(self.note(f"{visits[0]['id']}-discharge", "PT Discharge Summary",
                                 ("28579-1", "Physical therapy Note"), day, text))
        return out

    def history_and_physical(self) -> list[dict]:
        day = (date.fromisoformat(self.signed) - timedelta(days=7)).isoformat()
        lines = ["<h3>HISTORY AND PHYSICAL</h3>", "<p>CHIEF COMPLAINT: Low back pain.</p>"]
        if self.history:
            lines.append("<h4>HISTORY OF PRESENT ILLNESS</h4>" + "".join(f"<p>{t}</p>" for t in self.history))
        if self.exam:
            lines.append("<h4>PHYSICAL EXAM</h4>" + "".join(f"<p>{t}</p>" for t in self.exam))
        return [self.note(f"hp-{self.patient_id}", "History and Physical", ("34117-2", "History and physical note"),
                          day, "<html><body>" + "".join(lines) + "</body></html>", html=True)]


def render(orders: list[dict], chart: list[dict]) -> tuple[list[dict], list[dict]]:
    ehr = _Ehr(orders, chart)
    by_type = {"Patient": ehr.patient, "Coverage": ehr.coverage, "Condition": ehr.condition, "Procedure": ehr.procedure,
               "MedicationRequest": ehr.medication, "DiagnosticReport": ehr.report, "Observation": ehr.observation}
    out: list[dict] = []
    for resource in chart:
        render_one = by_type.get(resource["resourceType"])
        out += render_one(resource) if render_one else [resource]
    out += ehr.pt_course() + ehr.history_and_physical()
    return [_with_local_code(o) for o in orders], out


def _with_local_code(order: dict) -> dict:
    """The EHR's own order code beside the CPT codes."""
    code = order["code"]
    local = {"system": d.LOCAL_PROCEDURE, "code": d.local_code(code["text"]), "display": code["text"].upper()}
    return {**order, "code": {**code, "coding": [*code.get("coding", []), local]}}
