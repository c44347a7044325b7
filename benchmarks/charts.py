"""Order-sign requests of a given chart size: a synthetic scenario plus background history
(vitals, chronic conditions, visits, medications, reports) like a real EHR record."""
from __future__ import annotations

import random
from datetime import date, timedelta

from cds_service.synthetic import builders as fhir
from cds_service.synthetic.instances import synthesize

PREFETCH_TYPES = fhir.PREFETCH_TYPES


def background(rng: random.Random, count: int, patient_id: str, before: date) -> list[dict]:
    ids = fhir.IdFactory("bg")   # never collides with the scenario's own ids
    out = []
    for _ in range(count):
        day = (before - timedelta(days=rng.randint(30, 2000))).isoformat()
        pick = rng.random()
        if pick < 0.4:
            out.append(fhir.observation("Blood pressure systolic", value=rng.randint(100, 160), unit="mm[Hg]",
                                        effective=day, patient_id=patient_id, ids=ids))
        elif pick < 0.6:
            out.append(fhir.condition(rng.choice(["Essential hypertension", "Type 2 diabetes mellitus", "Hyperlipidemia"]),
                                      onset=day, note="Stable on current regimen.", patient_id=patient_id, ids=ids))
        elif pick < 0.8:
            out.append(fhir.procedure("Office visit", performed=day, note="Back pain follow-up; continue meloxicam.",
                                      patient_id=patient_id, ids=ids))
        elif pick < 0.9:
            out.append(fhir.medication(rng.choice(["lisinopril 10 mg", "metformin 500 mg", "atorvastatin 20 mg"]), day,
                                       patient_id=patient_id, ids=ids))
        else:
            out.append(fhir.report("XR chest", "No acute cardiopulmonary process.", day, patient_id=patient_id, ids=ids))
    return out


def chart_size(request: dict) -> int:
    size = 0
    for value in (request.get("prefetch") or {}).values():
        if isinstance(value, dict):
            size += len(value.get("entry") or []) if value.get("resourceType") == "Bundle" else 1
    return size


def sized_request(size: int, scenario: str = "seed-001", seed: int = 7) -> dict:
    """The scenario's request with background resources added until the prefetch holds `size` resources."""
    instance = synthesize(scenario, 1, seed)[0]
    request = instance.request
    patient_id = request["context"]["patientId"]
    authored = date.fromisoformat(request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"][:10])
    extra = background(random.Random(seed), max(0, size - chart_size(request)), patient_id, authored)
    keys = {rtype: key for key, rtype in PREFETCH_TYPES.items()}
    for resource in extra:
        request["prefetch"][keys[resource["resourceType"]]]["entry"].append({"resource": resource})
    return request


NOTE_PARAGRAPHS = (
    "SUBJECTIVE: {age}-year-old seen in follow-up for chronic low back pain radiating to the left buttock. "
    "Pain {pain}/10 today (visit {n}), worse with prolonged standing, better with rest. Sleep fair. No bowel or bladder change. "
    "Continues home exercise program and meloxicam 15 mg daily with partial relief.",
    "OBJECTIVE: Gait non-antalgic. Lumbar flexion limited to {flexion} degrees by pain. Straight leg raise negative "
    "bilaterally. Strength 5/5 in bilateral lower extremities. Sensation intact to light touch L2-S1. Reflexes 2+ "
    "and symmetric at the patellae and Achilles.",
    "ASSESSMENT: Lumbar spondylosis without myelopathy. Hypertension, controlled. Type 2 diabetes mellitus, "
    "stable on metformin; last HbA1c reviewed with the patient.",
    "PLAN: Continue current medications. Reviewed ergonomics and lifting technique (note {n}). Return in {weeks} weeks or "
    "sooner if new weakness, numbness or bladder symptoms. Patient verbalized understanding of the plan.",
    "MEDICATIONS REVIEWED: lisinopril 10 mg daily; metformin 500 mg twice daily; atorvastatin 20 mg nightly; "
    "meloxicam 15 mg daily. Allergies: no known drug allergies. Social history unchanged; no tobacco use.",
)

HTML_REPORT = ("<html><head><title>XR LUMBAR SPINE 2 VIEWS</title><style>td{{padding:2px}}</style></head><body>"
               "<h3>XR LUMBAR SPINE 2-3 VIEWS</h3><p>CLINICAL INDICATION: low back pain, visit {n}.</p>"
               "<h4>FINDINGS</h4><table><tr><th>Level</th><th>Finding</th></tr>"
               "<tr><td>L1-2</td><td>Disc height preserved.</td></tr><tr><td>L2-3</td><td>Disc height preserved.</td></tr>"
               "<tr><td>L3-4</td><td>Mild disc space narrowing.</td></tr><tr><td>L4-5</td><td>Mild facet arthropathy.</td></tr>"
               "<tr><td>L5-S1</td><td>Mild disc space narrowing with endplate osteophytes.</td></tr></table>"
               "<h4>IMPRESSION</h4><ol><li>Mild multilevel degenerative changes.</li><li>No fracture or listhesis.</li></ol>"
               "</body></html>")


def _b64(text: str) -> str:
    import base64
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def documents(rng: random.Random, notes: int, html_reports: int, patient_id: str, before: date) -> list[dict]:
    """Visit notes of about 4 KB (base64 text/plain DocumentReferences) and HTML imaging reports
    (base64 presentedForm), each text distinct so no cache can help."""
    out = []
    subject = {"reference": f"Patient/{patient_id}"}
    for n in range(notes):
        day = (before - timedelta(days=rng.randint(30, 2000))).isoformat()
        # Four visits' worth of text per note (copy-forward), every paragraph distinct across the chart.
        visits = ["\n\n".join(p.format(age=40 + n % 40, n=f"{n}.{v}", pain=(n + v) % 10, flexion=40 + (n * 7 + v) % 50,
                                        weeks=4 + (n + v) % 9) for p in NOTE_PARAGRAPHS) for v in range(4)]
        body = f"PROGRESS NOTE #{n} {day}\n\n" + "\n\n".join(visits)
        out.append({"resourceType": "DocumentReference", "id": f"bench-note-{n}", "status": "current",
                    "subject": subject, "type": {"text": "Progress note"}, "date": f"{day}T10:00:00Z",
                    "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": _b64(body)}}]})
    for n in range(html_reports):
        day = (before - timedelta(days=rng.randint(30, 2000))).isoformat()
        out.append({"resourceType": "DiagnosticReport", "id": f"bench-html-{n}", "status": "final", "subject": subject,
                    "code": {"text": "XR LUMBAR SPINE 2-3 VIEWS"}, "effectiveDateTime": day,
                    "presentedForm": [{"contentType": "text/html", "data": _b64(HTML_REPORT.format(n=n))}]})
    return out


def documents_request(size: int = 10_000, notes: int = 300, html_reports: int = 50, seed: int = 7) -> dict:
    """sized_request(size) whose background includes `notes` notes and `html_reports` HTML reports,
    in the prefetch keys an EHR sends them in (notes, reports): the total stays `size`."""
    request = sized_request(size - notes - html_reports, seed=seed)
    patient_id = request["context"]["patientId"]
    authored = date.fromisoformat(request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"][:10])
    docs = documents(random.Random(seed), notes, html_reports, patient_id, authored)
    notes = request["prefetch"].setdefault("notes", {"resourceType": "Bundle", "type": "searchset", "entry": []})
    notes["entry"] += [{"resource": r} for r in docs if r["resourceType"] == "DocumentReference"]
    request["prefetch"]["reports"]["entry"] += [{"resource": r} for r in docs if r["resourceType"] == "DiagnosticReport"]
    return request


# "With notes": about 3 % of the chart's resources are ~4 KB visit notes and 0.5 % HTML imaging
# reports (at 10,000: 300 and 50; at 200: 6 and 1; at 50: 2 and 1), at least one of each.
NOTES_PER_100 = 3
REPORTS_PER_1000 = 5


def note_counts(size: int) -> tuple[int, int]:
    """(notes, HTML reports) for a chart of `size` resources, rounded up."""
    return -(-size * NOTES_PER_100 // 100), -(-size * REPORTS_PER_1000 // 1000)


def bench_request(size: int, notes: bool) -> dict:
    """The order-sign request of one bench row: `size` resources, with or without notes and report bodies."""
    return documents_request(size, *note_counts(size)) if notes else sized_request(size)
