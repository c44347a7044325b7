"""The three seed reviews (../shared/seeds/) rebuilt as synthetic charts.

Seed 000 (flat back after a prior L1-5 fusion; ALIF L5-S1 + PSF T10-sacrum/pelvis + L5-S1
posterior osteotomy, inpatient: medically necessary): lordosis 31 deg vs pelvic incidence
51 deg (PI-LL 20), meloxicam and gabapentin, no formal physical therapy named.

Seed 002 (two stages: L2-L4 fusion; then exploration, decompression without levels,
osteotomies, fusion with pedicle screws, pelvic fixation, SI fusion): no significant stenosis
at L2-3 and L3-4, no documented scoliosis, fractured hardware, no SI-joint findings.

Seed 001 (T12-S2 fusion, NOT medically necessary): conservative care since 12/2024
(ESI 12/2024, prednisone, diclofenac), "PT" mentioned without dates, stenosis L1-S1,
spondylolisthesis at L3-4, L4-5, L5-S1, "very subtle" dextroscoliosis, straightened lordosis,
SI-joint fusion planned for "baseline ankylosing spondylitis" with no confirmed diagnosis.

Without `ids` the orders keep the ids the golden tests name ("sr-fusion").
"""
from __future__ import annotations

from . import builders as fhir
from .builders import IdFactory

SEED_000_AUTHORED = "2025-11-10"
SEED_001_AUTHORED = "2025-06-20"
SEED_002_AUTHORED = "2026-01-05"


def _sr_id(ids: IdFactory | None, name: str) -> str:
    return ids.named(name) if ids else name


def _orders(specs, authored: str, patient_id: str, ids: IdFactory | None) -> list[dict]:
    """Draft ServiceRequests from (text, CPT codes, body site, id) rows."""
    return [fhir.service_request(text, cpts=cpts, body_site=body_site, authored=authored, patient_id=patient_id,
                                 sr_id=_sr_id(ids, name))
            for text, cpts, body_site, name in specs]


def seed_001_orders(authored: str = SEED_001_AUTHORED, patient_id: str = "pat-1",
                    ids: IdFactory | None = None) -> list[dict]:
    return _orders([
        ("Posterior spinal fusion T12-S2 with pelvic fixation", ["22633", "22634", "22848"], "T12-S2", "sr-fusion"),
        ("Laminectomy L1-S1", ["63047", "63048"], "L1-S1", "sr-decompression"),
        ("Bilateral SI joint fusion devices for baseline ankylosing spondylitis", ["27279"], None, "sr-si-fusion"),
    ], authored, patient_id, ids)


def seed_001_chart(patient_id: str = "pat-1", ids: IdFactory | None = None) -> list[dict]:
    mine = {"patient_id": patient_id, "ids": ids}
    return [
        fhir.patient(patient_id),
        fhir.coverage(patient_id, _sr_id(ids, "cov-1")),
        fhir.condition("Spinal stenosis, lumbar region with neurogenic claudication", "M48.062", onset="2024-11-01",
                       note="Multilevel stenosis L1-S1. Conservative treatment so far: PT and OTC medications.",
                       **mine),
        fhir.condition("Spondylolisthesis, lumbar region", "M43.16", onset="2025-06-02",
                       note="Spondylolisthesis at L3-4, L4-5 and L5-S1.", **mine),
        fhir.procedure("Lumbar epidural steroid injection", performed="2024-12-10", **mine),
        fhir.medication("prednisone 10 mg tablet", "2024-12-15", **mine),
        fhir.medication("diclofenac 75 mg tablet", "2025-01-05", **mine),
        fhir.report("XR lumbar spine", "Very subtle thoracolumbar dextroscoliotic curvature. Straightening of the "
                    "normal lumbar lordosis. Grade 1 anterolisthesis at L3-4, L4-5 and L5-S1.", "2025-06-02", **mine),
        fhir.report("MRI lumbar spine", "Multilevel spinal stenosis L1-S1, moderate to severe at L3-4 and L4-5.",
                    "2025-05-15", **mine),
    ]


def seed_000_orders(authored: str = SEED_000_AUTHORED, patient_id: str = "pat-1",
                    ids: IdFactory | None = None) -> list[dict]:
    return _orders([
        ("ALIF L5-S1", ["22558"], "L5-S1", "sr-alif"),
        ("PSF T10-SACRUM/PELVIS, inpatient", ["22800", "22848"], "T10-SACRUM/PELVIS", "sr-psf"),
        ("L5-S1 posterior osteotomy", ["22214"], "L5-S1", "sr-osteotomy"),
    ], authored, patient_id, ids)


def seed_000_chart(patient_id: str = "pat-1", ids: IdFactory | None = None) -> list[dict]:
    mine = {"patient_id": patient_id, "ids": ids}
    return [
        fhir.patient(patient_id),
        fhir.coverage(patient_id, _sr_id(ids, "cov-1")),
        fhir.condition("Flatback syndrome, lumbar region", "M40.36", onset="2023-05-01",
                       note="Forward trunk tilt, unable to stand erect; thigh pain from chronic hip flexion.", **mine),
        fhir.procedure("Posterior spinal fusion L1-L5", performed="2015-03-02", cpt="22612", **mine),
        fhir.report("XR standing full-length spine", "Prior L1-5 fusion. Lumbar lordosis 31 degrees against a "
                    "pelvic incidence of 51 degrees.", "2025-10-20", **mine),
        fhir.medication("meloxicam 15 mg tablet", "2024-09-10", **mine),
        fhir.medication("gabapentin 300 mg capsule", "2024-10-01", **mine),
    ]


def seed_002_orders(authored: str = SEED_002_AUTHORED, patient_id: str = "pat-1",
                    ids: IdFactory | None = None) -> list[dict]:
    return _orders([
        ("Stage 1: L2-L4 fusion with cages, allograft and autograft, inpatient",
         ["22633", "22634", "20930", "20937"], "L2-L4", "sr-stage-1"),
        ("Stage 2: exploration of fusion, decompression, osteotomies, fusion with pedicle screws, pelvic "
         "fixation and SI joint fusion, inpatient",
         ["22830", "63052", "63053", "22214", "22216", "22633", "22634", "22843", "22848", "27280"], None, "sr-stage-2"),
    ], authored, patient_id, ids)


def seed_002_chart(patient_id: str = "pat-1", ids: IdFactory | None = None) -> list[dict]:
    mine = {"patient_id": patient_id, "ids": ids}
    return [
        fhir.patient(patient_id),
        fhir.coverage(patient_id, _sr_id(ids, "cov-1")),
        fhir.condition("Low back pain with possible neurological symptoms", onset="2024-06-01", **mine),
        fhir.procedure("Posterior spinal fusion L4-S1", performed="2019-08-14", cpt="22612", **mine),
        fhir.report("MRI lumbar spine", "No significant canal or foraminal stenosis at L2-3 and L3-4. "
                    "Postoperative changes L4-S1.", "2025-11-03", **mine),
        fhir.report("XR lumbar spine", "Fractured hardware. No scoliosis.", "2025-11-03", **mine),
        fhir.medication("naproxen 500 mg tablet", "2025-01-15", **mine),
    ]
