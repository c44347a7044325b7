"""fhir_mappings.level_facts: what the chart says at each interspace, read from plain-dict resources."""
from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.level_facts import map_level_facts, quote_span
from tests.stubs import fhir


def summary(facts) -> set[tuple]:
    """(kind, interspace or None, present, severity, value) of every fact."""
    return {(f.kind, str(f.interspace) if f.interspace else None, f.present, f.severity, f.value) for f in facts}


def read(conclusion: str) -> set[tuple]:
    return summary(map_level_facts([fhir.report("MRI lumbar spine", conclusion, "2025-05-15")]))


def at(kind, *spaces, present=True, severity=None, value=None) -> set[tuple]:
    return {(kind, space, present, severity, value) for space in spaces}


L1_L5 = ("L1-L2", "L2-L3", "L3-L4", "L4-L5")


@pytest.mark.parametrize("text, expected", [
    # spondylolisthesis: grade from words or from the slip percentage; "L4 on L5" is L4-L5
    ("Grade 1 anterolisthesis of L4 on L5.", at("spondylolisthesis", "L4-L5", severity="1")),
    ("Grade I anterolisthesis of L4 on L5.", at("spondylolisthesis", "L4-L5", severity="1")),
    ("Grade II spondylolisthesis at L5-S1.", at("spondylolisthesis", "L5-S1", severity="2")),
    ("Meyerding grade 2 anterolisthesis L4-5.", at("spondylolisthesis", "L4-L5", severity="2")),
    ("Low-grade anterolisthesis at L4-5.", at("spondylolisthesis", "L4-L5")),
    ("Grade 1-2 anterolisthesis L4-5.", at("spondylolisthesis", "L4-L5", severity="1")),     # the lower grade
    ("Anterolisthesis of L4 on L5 with a slip of 30%.", at("spondylolisthesis", "L4-L5", severity="2", value=30.0)),
    ("Slip of 60% at L5-S1.", at("spondylolisthesis", "L5-S1", severity="3", value=60.0)),
    ("Retrolisthesis of L2 on L3.", at("retrolisthesis", "L2-L3")),
    ("Anterolisthesis of L5 measuring 4 mm.", at("spondylolisthesis", "L5-S1")),             # slipped vertebra over the next
    ("Spondylolisthesis at L3-4, L4-5 and L5-S1.", at("spondylolisthesis", "L3-L4", "L4-L5", "L5-S1")),
    ("No slip and fall reported.", set()),
    # instability
    ("Dynamic instability at L4-5 with 4 mm translation on flexion-extension.",
     at("instability", "L4-L5", value=4.0)),
    ("Segmental hypermobility at L3-4.", at("instability", "L3-L4")),
    ("Abnormal motion at L4-5 on flexion-extension films.", at("instability", "L4-L5")),
    ("no instability on flexion-extension films", at("instability", None, present=False)),
    ("Hemodynamically unstable overnight.", set()),
    ("Unstable spondylolisthesis at L4-5.", at("instability", "L4-L5") | at("spondylolisthesis", "L4-L5")),
    # stenosis: severity normalised from the words before it
    ("No significant canal or foraminal stenosis at L2-3 and L3-4.",
     at("stenosis", "L2-L3", "L3-L4", present=False)),
    ("Multilevel spinal stenosis L1-S1, moderate to severe at L3-4 and L4-5.",
     at("stenosis", "L1-L2", "L2-L3", "L5-S1") | at("stenosis", "L3-L4", "L4-L5", severity="moderate-severe")),
    ("Mild to moderate foraminal narrowing at L4-5.", at("stenosis", "L4-L5", severity="mild-moderate")),
    ("Moderate-severe central canal stenosis at L4-5.", at("stenosis", "L4-L5", severity="moderate-severe")),
    ("Marked stenosis at L3-4 and critical stenosis at L4-5.", at("stenosis", "L3-L4", "L4-L5", severity="severe")),
    ("Moderate canal narrowing at L3-4.", at("stenosis", "L3-L4", severity="moderate")),
    ("Significant stenosis at L4-5.", at("stenosis", "L4-L5")),
    ("No significant stenosis.", at("stenosis", None, present=False)),
    ("Neural compression at L5-S1.", at("stenosis", "L5-S1")),
    ("No stenosis at L2-3, severe at L4-5.", at("stenosis", "L2-L3", present=False) | at("stenosis", "L4-L5", severity="severe")),
    ("No evidence of moderate or severe stenosis at L4-5.", at("stenosis", "L4-L5", present=False)),
    ("Stenosis at L4-5 and a disc bulge at L5-S1.", at("stenosis", "L4-L5")),
    ("Grade 1 anterolisthesis of L4 on L5 with mild central canal stenosis at L4-5 and moderate foraminal "
     "narrowing at L5-S1.", at("spondylolisthesis", "L4-L5", severity="1") | at("stenosis", "L4-L5", severity="mild")
     | at("stenosis", "L5-S1", severity="moderate")),
    ("Aortic stenosis, moderate.", set()),
    ("L4-5: Severe stenosis. Grade 2 listhesis.\nL5-S1: No stenosis.",
     at("stenosis", "L4-L5", severity="severe") | at("spondylolisthesis", "L4-L5", severity="2")
     | at("stenosis", "L5-S1", present=False)),
    # deformity: hedged readings are "subtle"; a Cobb angle is its value
    ("Very subtle thoracolumbar dextroscoliotic curvature.", at("deformity", None, severity="subtle")),
    ("Straightening of the normal lumbar lordosis.", at("deformity", None, severity="subtle")),
    ("Mild levoscoliosis.", at("deformity", None, severity="subtle")),
    ("Levoscoliosis with a Cobb angle of 35 degrees.", at("deformity", None, value=35.0)),
    ("Loss of lumbar lordosis with sagittal imbalance.", at("deformity", None)),
    ("Flatback deformity.", at("deformity", None)),
    ("Coronal imbalance and malalignment.", at("deformity", None)),
    ("No scoliosis.", at("deformity", None, present=False)),
    ("Normal curvature.", set()),
    # prior fusion needs a sign it already happened
    ("Prior L1-5 fusion.", at("prior_fusion", *L1_L5)),
    ("s/p L4-S1 fusion", at("prior_fusion", "L4-L5", "L5-S1")),
    ("previous fusion L1-L5", at("prior_fusion", *L1_L5)),
    ("history of L4-5 fusion", at("prior_fusion", "L4-L5")),
    ("solid fusion at L4-5", at("prior_fusion", "L4-L5")),
    ("fused at L4-5", at("prior_fusion", "L4-L5")),
    ("L4-5 fusion is planned.", set()),
    ("s/p L4-5 laminectomy, now planned for fusion at L3-4.", set()),
    ("No prior fusion.", at("prior_fusion", None, present=False)),
    # pseudarthrosis and hardware failure
    ("Pseudarthrosis at L4-5.", at("pseudarthrosis", "L4-L5")),
    ("Nonunion at L5-S1.", at("pseudarthrosis", "L5-S1")),
    ("Failed fusion L4-5.", at("pseudarthrosis", "L4-L5")),
    ("Fractured hardware.", at("hardware_failure", None)),
    ("Broken rod at L4-5.", at("hardware_failure", "L4-L5")),
    ("Halo around the screws at L5-S1.", at("hardware_failure", "L5-S1")),
    ("Screw loosening at L4-5 and L5-S1.", at("hardware_failure", "L4-L5", "L5-S1")),
])
def test_conclusion_sentences(text, expected):
    assert read(text) == expected


# --- the seed reviews' sentences ----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # seed 000
    ("The patient's prior L1-5 fusion has created iatrogenic flatback deformity",
     at("prior_fusion", *L1_L5) | at("deformity", *L1_L5)),
    ("31 degrees of lumbar lordosis against a 51-degree pelvic incidence, creating a PI-LL mismatch of 20 degrees",
     set()),
    # seed 001
    ("Very subtle thoracolumbar dextroscoliotic curvature", at("deformity", None, severity="subtle")),
    ("Straightening of normal lumbar lordosis", at("deformity", None, severity="subtle")),
    ("The presence of spondylolisthesis at L3-4, L4-5, and L5-S1", at("spondylolisthesis", "L3-L4", "L4-L5", "L5-S1")),
    # seed 002
    ("no significant canal or foraminal stenosis at L2-3 and L3-4", at("stenosis", "L2-L3", "L3-L4", present=False)),
    ("fractured hardware", at("hardware_failure", None)),
    ("no documented scoliosis", at("deformity", None, present=False)),
])
def test_seed_sentences(text, expected):
    assert read(text) == expected


# --- resources -------------------------------------------------------------------------------------

def test_coded_condition_without_a_level_is_documented_without_one():
    condition = fhir.condition("Spondylolisthesis, lumbar region", "M43.16", onset="2025-06-02")
    (fact,) = map_level_facts([condition])
    assert (fact.kind, fact.interspace, fact.present) == ("spondylolisthesis", None, True)
    assert fact.evidence.reference == f"Condition/{condition['id']}"
    assert fact.evidence.description == "“Spondylolisthesis, lumbar region” (M43.16)"
    assert fact.evidence.day == date(2025, 6, 2)


def test_coded_condition_takes_levels_from_body_site_or_note():
    in_site = fhir.with_fields(fhir.condition("Spondylolisthesis", "M43.16"), bodySite=fhir.body_site("L4-L5"))
    assert summary(map_level_facts([in_site])) == at("spondylolisthesis", "L4-L5")
    in_note = fhir.condition("Spondylolisthesis, lumbar region", "M43.16", note="Spondylolisthesis at L3-4, L4-5 and L5-S1.")
    # the level-less fact of the code is dropped once the note places the kind
    assert summary(map_level_facts([in_note])) == at("spondylolisthesis", "L3-L4", "L4-L5", "L5-S1")


@pytest.mark.parametrize("text, icd10, expected", [
    ("Pseudarthrosis after spinal fusion", "M96.0", at("pseudarthrosis", None)),
    ("Mechanical loosening of internal fixation device of vertebrae", "T84.226A", at("hardware_failure", None)),
    ("Arthrodesis status", "Z98.1", at("prior_fusion", None)),
    ("Spinal stenosis, lumbar region with neurogenic claudication", "M48.062", at("stenosis", None)),
    ("Flatback syndrome, lumbar region", "M40.36", at("deformity", None)),
    ("Essential hypertension", "I10", set()),
])
def test_coded_conditions(text, icd10, expected):
    assert summary(map_level_facts([fhir.condition(text, icd10)])) == expected


def test_inactive_condition_keeps_only_a_prior_fusion():
    resolved = fhir.condition("Spondylolisthesis L4-5", "M43.16", clinical_status="resolved",
                              note="History of L4-5 fusion.")
    assert summary(map_level_facts([resolved])) == at("prior_fusion", "L4-L5")


def test_refuted_resources_assert_nothing():
    refuted = fhir.with_fields(fhir.condition("Spondylolisthesis L4-5", "M43.16"), verificationStatus=fhir.verification("refuted"))
    error = fhir.with_fields(fhir.report("MRI", "Severe stenosis at L4-5.", "2025-01-01"), status="entered-in-error")
    assert map_level_facts([refuted, error]) == ()


def test_condition_note_saying_no_scoliosis_is_an_absent_deformity():
    condition = fhir.condition("Low back pain", note="No scoliosis. Mild stenosis at L4-5.")
    assert summary(map_level_facts([condition])) == at("deformity", None, present=False) | at("stenosis", "L4-L5", severity="mild")


def test_observation_name_read_with_its_value():
    graded = fhir.observation("Spondylolisthesis grade", value_string="Grade 2 at L5-S1", effective="2025-03-01")
    absent = fhir.finding("Spinal instability on flexion-extension", boolean=False, effective="2025-03-01")
    part = fhir.panel("Lumbar MRI findings", [fhir.component("Central canal", value_string="severe stenosis at L4-5")])
    assert summary(map_level_facts([graded, absent, part])) == (
        at("spondylolisthesis", "L5-S1", severity="2") | at("instability", None, present=False)
        | at("stenosis", "L4-L5", severity="severe"))


def test_completed_fusion_procedure_is_a_prior_fusion_dated_when_performed():
    fusion = fhir.procedure("Posterior spinal fusion L1-L5", performed="2015-03-02", cpt="22612")
    facts = map_level_facts([fusion])
    assert summary(facts) == at("prior_fusion", *L1_L5)
    assert {f.evidence.day for f in facts} == {date(2015, 3, 2)}
    assert facts[0].evidence.description == "“Posterior spinal fusion L1-L5” (CPT 22612)"


@pytest.mark.parametrize("resource, expected", [
    (fhir.with_fields(fhir.procedure("Lumbar fusion", performed="2019-08-14"), bodySite=fhir.body_site("L4-L5")),
     at("prior_fusion", "L4-L5")),
    (fhir.procedure("Arthrodesis", performed="2019-08-14", cpt="22612", note="Instrumented fusion L5-S1 without complication."),
     at("prior_fusion", "L5-S1")),
    (fhir.procedure("Posterior spinal fusion", performed="2019-08-14", cpt="22612"), at("prior_fusion", None)),
    (fhir.with_fields(fhir.procedure("Posterior spinal fusion L4-L5", cpt="22612"), status="in-progress"), set()),
    (fhir.procedure("Exploration of fusion L4-L5", performed="2019-08-14", cpt="22830"), set()),
    (fhir.procedure("Laminectomy L4-L5", performed="2019-08-14", cpt="63047"), set()),
    (fhir.procedure("Hardware removal", performed="2024-02-01", note="Broken rod at L4-5 removed."),
     at("hardware_failure", "L4-L5")),
])
def test_procedures(resource, expected):
    assert summary(map_level_facts([resource])) == expected


def test_one_fact_per_kind_and_interspace_in_a_resource_the_most_severe():
    report = fhir.report("MRI", "Stenosis at L4-5. Impression: severe stenosis at L4-5.", "2025-05-01")
    (fact,) = map_level_facts([report])
    assert (str(fact.interspace), fact.severity) == ("L4-L5", "severe")
    assert fact.evidence.description == "“severe stenosis at L4-5”"


def test_resources_are_never_merged_and_conflicts_are_kept():
    older = fhir.report("MRI 2024", "Mild stenosis at L4-5.", "2024-01-10")
    newer = fhir.report("MRI 2025", "No stenosis at L4-5. Severe stenosis at L3-4.", "2025-01-10")
    facts = map_level_facts([older, newer])
    assert summary(facts) == (at("stenosis", "L4-L5", severity="mild") | at("stenosis", "L4-L5", present=False)
                              | at("stenosis", "L3-L4", severity="severe"))
    assert sorted(f.evidence.day for f in facts) == [date(2024, 1, 10), date(2025, 1, 10), date(2025, 1, 10)]


def test_evidence_quotes_the_clause_and_describes_it_by_the_words_around_the_finding():
    text = ("Multilevel degenerative change of the lumbar spine with disc desiccation, facet arthropathy and "
            "ligamentum flavum thickening is again noted and is overall unchanged from the prior examination "
            "with severe central canal stenosis at L4-5 that compresses the cauda equina nerve roots.")
    (fact,) = [f for f in map_level_facts([fhir.report("MRI", text, "2025-01-01")]) if f.kind == "stenosis"]
    assert fact.evidence.description.startswith("“…") and fact.evidence.description.endswith("”")
    assert len(fact.evidence.description) <= 96
    assert "severe central canal stenosis at L4-5" in fact.evidence.description
    assert 160 < len(fact.evidence.quote) <= 200 and fact.evidence.quote.startswith("…")
    assert "unchanged from the prior examination with severe central canal stenosis at L4-5" in fact.evidence.quote
    assert fact.evidence.source == "conclusion"
    assert fact.evidence.reference.startswith("DiagnosticReport/")
    assert quote_span("  stenosis   at L4-5, ", 0, 22) == "“stenosis at L4-5”"


# --- destabilising decompression, from the draft orders only ---------------------------------------------

@pytest.mark.parametrize("text, site, expected", [
    ("Laminectomy L4-5 with bilateral facetectomy", None, {"L4-L5"}),
    ("L4-5 laminectomy with >50% facetectomy", None, {"L4-L5"}),
    ("Decompression with facetectomy > 50% at L3-4", None, {"L3-L4"}),
    ("Complete facetectomy L5-S1", None, {"L5-S1"}),
    ("Total facetectomy and foraminotomy", "L4-L5", {"L4-L5"}),
    ("Pars resection at L5-S1", None, {"L5-S1"}),
    ("Pars removal", "L5-S1", {"L5-S1"}),
    ("Wide decompression with facetectomy L3-4 and L4-5", None, {"L3-L4", "L4-L5"}),
    ("Laminectomy with bilateral facetectomy", None, {None}),
    ("Laminectomy L4-5 with partial facetectomy", None, set()),
    ("Laminectomy L4-5 with bilateral partial facetectomies", None, set()),
    ("Laminectomy with 30% facetectomy", "L4-L5", set()),
    ("Laminectomy L4-5 with medial facetectomy; TLIF L5-S1", None, set()),
])
def test_destabilizing_decompression_in_orders(text, site, expected):
    order = fhir.service_request(text, cpts=["63047"], body_site=site)
    facts = map_level_facts([], [order])
    assert {str(f.interspace) if f.interspace else None for f in facts} == expected
    assert all(f.kind == "destabilizing_decompression" and f.present for f in facts)
    assert all(f.evidence.reference == f"ServiceRequest/{order['id']}" and f.evidence.day == date(2025, 6, 20)
               for f in facts)


def test_order_note_and_order_detail_are_read():
    order = fhir.service_request("Laminectomy", cpts=["63047"], note="Plan bilateral facetectomy at L4-5.")
    order["orderDetail"] = [{"text": "pars resection L5-S1"}]
    assert summary(map_level_facts([], [order])) == at("destabilizing_decompression", "L4-L5", "L5-S1")


def test_facetectomy_in_the_chart_is_not_a_planned_decompression():
    note = fhir.condition("Lumbar stenosis", note="Surgeon plans bilateral facetectomy at L4-5.")
    assert {f.kind for f in map_level_facts([note])} == {"stenosis"}


# --- build_facts wires the three mappers --------------------------------------------------------------

def test_build_facts_fills_level_facts_measurements_and_diagnoses():
    from fhir_mappings.build import build_facts
    from fhir_mappings.chart import Chart
    from tests.stubs import seeds

    refuted = fhir.with_fields(fhir.condition("Pseudarthrosis L4-5", "M96.0"), verificationStatus=fhir.verification("refuted"))
    exam = fhir.observation("SI joint examination", value_string="Positive FABER and thigh thrust tests.",
                            effective="2025-05-01")
    orders = seeds.seed_001_orders() + [fhir.service_request("Laminectomy L4-L5 with bilateral facetectomy", cpts=["63047"])]
    chart = Chart.build("pat-1", orders, seeds.seed_001_chart() + [refuted, exam], date(2025, 6, 20))
    facts = build_facts(chart)

    listhesis = {(str(f.interspace), f.severity) for f in facts.level_facts if f.kind == "spondylolisthesis"}
    assert listhesis == {("L3-L4", None), ("L4-L5", None), ("L5-S1", None), ("L3-L4", "1"), ("L4-L5", "1"), ("L5-S1", "1")}
    assert {(str(f.interspace), f.severity) for f in facts.level_facts
            if f.kind == "stenosis" and f.severity} == {("L3-L4", "moderate-severe"), ("L4-L5", "moderate-severe")}
    assert {(f.interspace, f.severity) for f in facts.level_facts if f.kind == "deformity"} == {(None, "subtle")}
    assert {str(f.interspace) for f in facts.level_facts if f.kind == "destabilizing_decompression"} == {"L4-L5"}
    assert not [f for f in facts.level_facts if f.kind == "pseudarthrosis"]            # refuted: skipped
    assert {(m.test, m.positive) for m in facts.measurements} == {("faber", True), ("thigh_thrust", True)}
    assert {(d.valueset, d.coded) for d in facts.diagnoses} == {
        ("stenosis", True), ("stenosis_with_claudication", True), ("spondylolisthesis", True)}
