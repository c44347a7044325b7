"""The three seed reviews (../shared/seeds/) rebuilt as synthetic charts.

Seed 001 (T12-S2 fusion, NOT medically necessary): conservative care since 12/2024
(ESI 12/2024, prednisone, diclofenac), "PT" mentioned without dates, stenosis L1-S1,
spondylolisthesis at L3-4, L4-5, L5-S1, "very subtle" dextroscoliosis, straightened lordosis,
SI-joint fusion planned for "baseline ankylosing spondylitis" with no confirmed diagnosis.
"""
from __future__ import annotations

from . import fhir

SEED_001_AUTHORED = "2025-06-20"


def seed_001_orders(authored: str = SEED_001_AUTHORED) -> list[dict]:
    return [
        fhir.service_request("Posterior spinal fusion T12-S2 with pelvic fixation", cpts=["22633", "22634"],
                             body_site="T12-S2", authored=authored, sr_id="sr-fusion"),
        fhir.service_request("Laminectomy L1-S1", cpts=["63047", "63048"], body_site="L1-S1", authored=authored,
                             sr_id="sr-decompression"),
        fhir.service_request("Bilateral SI joint fusion devices for baseline ankylosing spondylitis", cpts=["27279"],
                             authored=authored, sr_id="sr-si-fusion"),
    ]


def seed_001_chart() -> list[dict]:
    return [
        fhir.patient(),
        fhir.coverage(),
        fhir.condition("Spinal stenosis, lumbar region with neurogenic claudication", "M48.062", onset="2024-11-01",
                       note="Multilevel stenosis L1-S1. Conservative treatment so far: PT and OTC medications."),
        fhir.condition("Spondylolisthesis, lumbar region", "M43.16", onset="2025-06-02",
                       note="Spondylolisthesis at L3-4, L4-5 and L5-S1."),
        fhir.procedure("Lumbar epidural steroid injection", performed="2024-12-10"),
        fhir.medication("prednisone 10 mg tablet", "2024-12-15"),
        fhir.medication("diclofenac 75 mg tablet", "2025-01-05"),
        fhir.report("XR lumbar spine", "Very subtle thoracolumbar dextroscoliotic curvature. Straightening of the "
                    "normal lumbar lordosis. Grade 1 anterolisthesis at L3-4, L4-5 and L5-S1.", "2025-06-02"),
        fhir.report("MRI lumbar spine", "Multilevel spinal stenosis L1-S1, moderate to severe at L3-4 and L4-5.",
                    "2025-05-15"),
    ]
