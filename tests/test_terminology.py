"""Terminology data layer: ICD roots against the bundled release, generator drift, matching."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from terminology import build_valuesets, cpt, measurements, valuesets
from terminology.systems import CPT, HCPCS, ICD10CM, LOINC, RXNORM, SNOMED, UnknownCodeSystem, resolve_system

REQUIRED_SETS = {
    "spondylolisthesis", "spondylolysis", "stenosis_with_claudication", "stenosis_without_claudication", "stenosis",
    "spinal_instability", "scoliosis", "flat_back", "kyphosis", "ankylosing_spondylitis", "si_joint_disorder",
    "pseudarthrosis", "hardware_failure", "cauda_equina", "radiculopathy", "disc_degeneration",
    "progressive_motor_deficit", "spinal_fracture", "spinal_tumor", "spinal_infection", "myelopathy",
    "inflammatory_arthropathy", "sleep_apnea", "heart_failure", "chronic_kidney_disease", "anticoagulation",
}  # fmt: skip

# ICD-10-CM codes the research note (criteria-terminology §2a, deps.md §6) lists, and where they belong.
NOTE_CODES: dict[str, set[str]] = {
    "M43.16": {"spondylolisthesis"}, "M43.17": {"spondylolisthesis"}, "M43.15": {"spondylolisthesis"},
    "M43.10": {"spondylolisthesis"}, "M43.06": {"spondylolysis"},
    "M48.062": {"stenosis_with_claudication", "stenosis"}, "M48.061": {"stenosis_without_claudication", "stenosis"},
    "M48.06": {"stenosis"}, "M48.07": {"stenosis"}, "M48.05": {"stenosis"},
    "M41.9": {"scoliosis"}, "M41.26": {"scoliosis"}, "M41.27": {"scoliosis"}, "M41.126": {"scoliosis"},
    "M41.46": {"scoliosis"}, "M41.86": {"scoliosis"},
    "M40.30": {"flat_back"}, "M40.35": {"flat_back"}, "M40.36": {"flat_back"}, "M40.37": {"flat_back"},
    "M96.3": {"kyphosis"}, "M40.204": {"kyphosis"}, "M40.205": {"kyphosis"}, "M40.209": {"kyphosis"},
    "M40.295": {"kyphosis"},
    "M45.0": {"ankylosing_spondylitis"}, "M45.5": {"ankylosing_spondylitis"}, "M45.6": {"ankylosing_spondylitis"},
    "M45.7": {"ankylosing_spondylitis"}, "M45.8": {"ankylosing_spondylitis"}, "M45.9": {"ankylosing_spondylitis"},
    "M45.A0": {"ankylosing_spondylitis"}, "M45.A8": {"ankylosing_spondylitis"},
    "M46.1": {"si_joint_disorder"}, "M53.3": {"si_joint_disorder"}, "S33.6XXA": {"si_joint_disorder"},
    "S33.6XXD": {"si_joint_disorder"}, "S33.6XXS": {"si_joint_disorder"},
    "M53.2X8": {"si_joint_disorder", "spinal_instability"},
    "M96.0": {"pseudarthrosis"},
    "T84.216A": {"hardware_failure"}, "T84.226A": {"hardware_failure"}, "T84.296A": {"hardware_failure"},
    "T84.216D": {"hardware_failure"}, "T84.63XA": {"spinal_infection"},
    "M54.16": {"radiculopathy"}, "M54.17": {"radiculopathy"}, "M51.16": {"radiculopathy"}, "M51.17": {"radiculopathy"},
    "M51.360": {"disc_degeneration"}, "M51.361": {"disc_degeneration"}, "M51.362": {"disc_degeneration"},
    "M51.369": {"disc_degeneration"}, "M51.370": {"disc_degeneration"}, "M51.371": {"disc_degeneration"},
    "M51.372": {"disc_degeneration"}, "M51.379": {"disc_degeneration"},
    "G83.4": {"cauda_equina"},
    "M53.2X5": {"spinal_instability"}, "M53.2X6": {"spinal_instability"}, "M53.2X7": {"spinal_instability"},
}  # fmt: skip


@pytest.fixture(scope="session")
def icd() -> ModuleType:
    return build_valuesets.load_icd()


@pytest.fixture(scope="session")
def curated() -> dict[str, Any]:
    return build_valuesets.load_curated()


@pytest.fixture(scope="session")
def expanded() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_data_text("valuesets.expanded.json"))
    return doc


def _data_text(name: str) -> str:
    return resources.files("terminology").joinpath("data", name).read_text(encoding="utf-8")


def _verhoeff_ok(number: str) -> bool:
    d = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
         [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
         [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
         [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]  # fmt: skip
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
         [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
         [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]  # fmt: skip
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = d[c][p[i % 8][int(ch)]]
    return c == 0


def _loinc_check_ok(code: str) -> bool:
    body, check = code.split("-")
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return (10 - total % 10) % 10 == int(check)


# --- value-set data -------------------------------------------------------------------------


def test_required_value_sets_exist(curated: dict[str, Any]) -> None:
    names = [vs["name"] for vs in curated["valuesets"]]
    assert len(names) == len(set(names))
    assert set(names) == REQUIRED_SETS == valuesets.all_names()


def test_every_root_is_a_valid_code_with_the_recorded_description(curated: dict[str, Any], icd: ModuleType) -> None:
    for vs in curated["valuesets"]:
        for root in vs["icd10cm_roots"]:
            code = root["code"]
            assert icd.is_valid_item(code), (vs["name"], code)
            assert not icd.is_chapter_or_block(code), (vs["name"], code)
            assert root["description"] == icd.get_description(code), (vs["name"], code)
            assert root["source"].strip(), (vs["name"], code)


def test_every_expanded_code_descends_from_a_root_of_its_set(
    curated: dict[str, Any], expanded: dict[str, Any], icd: ModuleType
) -> None:
    roots = {vs["name"]: [r["code"] for r in vs["icd10cm_roots"]] for vs in curated["valuesets"]}
    assert set(expanded["valuesets"]) == set(roots)
    for name, codes in expanded["valuesets"].items():
        assert codes == sorted(codes) and len(codes) == len(set(codes)), name
        for code in codes:
            assert icd.is_valid_item(code) and icd.add_dot(code) == code, (name, code)
            assert any(code == r or icd.is_descendant(code, r) for r in roots[name]), (name, code)


def test_regenerating_the_expansion_reproduces_the_committed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build_valuesets.main(["--output", str(tmp_path)]) == 0
    regenerated = (tmp_path / build_valuesets.EXPANDED_NAME).read_text(encoding="utf-8")
    assert regenerated == _data_text("valuesets.expanded.json"), "run: python -m terminology.build_valuesets"
    assert "April 2026" in json.loads(regenerated)["icd10cm_release"]
    capsys.readouterr()


@pytest.mark.parametrize("code", sorted(NOTE_CODES))
def test_research_note_codes_are_in_their_intended_sets(code: str) -> None:
    assert NOTE_CODES[code] <= valuesets.match_coding(ICD10CM, code)


@pytest.mark.parametrize(
    ("code", "name"),
    [("M43.16", "spondylolisthesis"), ("M48.062", "stenosis_with_claudication"), ("M40.36", "flat_back"),
     ("M96.0", "pseudarthrosis"), ("T84.216A", "hardware_failure"), ("G83.4", "cauda_equina"),
     ("M46.1", "si_joint_disorder")],
)  # fmt: skip
def test_spot_checks(code: str, name: str) -> None:
    assert name in valuesets.match_coding(ICD10CM, code)
    assert code in valuesets.get(name).icd10cm


def test_cervical_and_unrelated_codes_stay_out() -> None:
    assert valuesets.match_coding(ICD10CM, "M48.02") == frozenset()  # cervical stenosis
    assert valuesets.match_coding(ICD10CM, "M43.12") == frozenset()  # cervical spondylolisthesis
    assert valuesets.match_coding(ICD10CM, "I35.0") == frozenset()  # aortic stenosis
    assert "stenosis_without_claudication" not in valuesets.match_coding(ICD10CM, "M48.062")


def test_icd_input_is_normalized() -> None:
    for raw in ("M43.16", "m43.16", " M4316 ", "m4316"):
        assert valuesets.match_coding("icd-10-cm", raw) == {"spondylolisthesis"}
    assert valuesets.normalize_icd10cm("t84216a") == "T84.216A"
    assert valuesets.normalize_icd10cm("G83") == "G83"


def test_snomed_entries_are_well_formed(curated: dict[str, Any]) -> None:
    for vs in curated["valuesets"]:
        assert vs["text"], f"{vs['name']} needs text synonyms (product-owner rule)"
        for entry in vs["snomed"]:
            assert isinstance(entry["verified"], bool) and entry["source"] and entry["display"]
            assert entry["code"].isdigit() and _verhoeff_ok(entry["code"]), entry["code"]


def test_unverified_snomed_is_never_matched_alone() -> None:
    unverified = {code for name in valuesets.all_names() for code in valuesets.get(name).snomed_unverified}
    assert {"274152003", "76107001", "298382003", "9631008", "192970008", "77547008", "72274001"} <= unverified
    for code in unverified:
        assert valuesets.match_coding(SNOMED, code) == frozenset(), code
        assert valuesets.unverified_snomed_matches(code), code
    assert valuesets.match_coding("sct", "240220009") == {"spinal_instability"}
    assert valuesets.match_coding(SNOMED, "202805003") == {"si_joint_disorder"}


def test_unknown_names_and_systems() -> None:
    with pytest.raises(valuesets.UnknownValueSet):
        valuesets.get("nope")
    with pytest.raises(KeyError):
        valuesets.get("nope")
    assert valuesets.match_coding("http://example.org/local", "M43.16") == frozenset()
    assert valuesets.match_coding(LOINC, "M43.16") == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Grade 1 anterolisthesis L4 on L5", "spondylolisthesis"),
        ("very subtle dextroscoliotic curvature", "scoliosis"),
        ("no cauda equina", "cauda_equina"),
        ("Severe central canal\nstenosis at L4-5", "stenosis"),
        ("Neurogenic claudication after 50 m", "stenosis_with_claudication"),
        ("Bilateral L5 pars defects", "spondylolysis"),
        ("Pseudoarthrosis at L4-5 with broken rod", "pseudarthrosis"),
        ("Broken rod on the left", "hardware_failure"),
        ("Sacroiliitis on MRI", "si_joint_disorder"),
        ("Left foot drop", "progressive_motor_deficit"),
        ("L1 burst fracture", "spinal_fracture"),
        ("Suspected spondylodiscitis L3-4", "spinal_infection"),
        ("Cervical myelopathy", "myelopathy"),
        ("Pott’s disease", "spinal_infection"),
        ("Flat-back deformity after L1-5 fusion", "flat_back"),
        ("Degenerative disc disease L5-S1", "disc_degeneration"),
        ("Left L5 radiculopathy", "radiculopathy"),
        ("4 mm dynamic instability at L4-5", "spinal_instability"),
        ("Known ankylosing spondylitis", "ankylosing_spondylitis"),
        ("Vertebral metastases", "spinal_tumor"),
    ],
)
def test_match_text_finds_the_concept(text: str, expected: str) -> None:
    assert expected in valuesets.match_text(text)


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("Severe aortic stenosis, TAVR planned", "stenosis"),
        ("Renal artery stenosis", "stenosis"),
        ("Gait instability, uses a walker", "spinal_instability"),
        ("Normal thoracic kyphosis", "kyphosis"),
        ("Spondylolisthesis L4-5", "spondylolysis"),
        ("The retrolisthesis", "stenosis"),
    ],
)
def test_match_text_avoids_lookalikes(text: str, absent: str) -> None:
    assert absent not in valuesets.match_text(text)


def test_negative_text_does_not_hide_a_real_mention() -> None:
    assert "stenosis" in valuesets.match_text("History of aortic stenosis. Moderate foraminal stenosis L5-S1.")


def test_find_text_offsets_index_the_original_text() -> None:
    text = "MRI: NO Cauda Equina compression; Grade 1 Anterolisthesis L4 on L5 and Pott’s disease"
    hits = valuesets.find_text(text)
    assert [name for name, _, _ in hits] == ["cauda_equina", "spondylolisthesis", "spinal_infection"]
    assert [text[start:end] for _, start, end in hits] == ["Cauda Equina", "Anterolisthesis", "Pott’s disease"]
    assert valuesets.find_text("aortic stenosis") == []


def test_runtime_modules_do_not_import_the_icd_library() -> None:
    code = (
        "import sys, terminology.valuesets as v, terminology.cpt as c, terminology.measurements as m;"
        "v.match_coding('icd10cm', 'M43.16'); v.match_text('x'); c.lookup('22630'); m.match_text('x');"
        "print('simple_icd_10_cm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "False"


# --- code systems -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "uri"),
    [
        ("icd10cm", ICD10CM), ("ICD-10-CM", ICD10CM), ("urn:oid:2.16.840.1.113883.6.90", ICD10CM), (ICD10CM, ICD10CM),
        ("snomed", SNOMED), ("SCT", SNOMED), ("urn:oid:2.16.840.1.113883.6.96", SNOMED), ("http://snomed.info/sct/", SNOMED),
        ("loinc", LOINC), ("urn:oid:2.16.840.1.113883.6.1", LOINC), (" http://loinc.org ", LOINC),
        ("cpt", CPT), ("urn:oid:2.16.840.1.113883.6.12", CPT), ("rxnorm", RXNORM), (RXNORM, RXNORM), (HCPCS, HCPCS),
    ],
)  # fmt: skip
def test_resolve_system(alias: str, uri: str) -> None:
    assert resolve_system(alias) == uri


@pytest.mark.parametrize("bad", ["icd9", "http://example.org/cs", "", "urn:oid:2.16.840.1.113883.6.3"])
def test_resolve_system_rejects_unknown(bad: str) -> None:
    with pytest.raises(UnknownCodeSystem):
        resolve_system(bad)
    assert issubclass(UnknownCodeSystem, KeyError)


# --- CPT ----------------------------------------------------------------------------------------

CPT_CLASSES = {
    "fusion": ["22612", "22614", "22630", "22632", "22633", "22634", "22558", "22585"],
    "deformity_fusion": ["22800", "22802", "22804"],
    "exploration": ["22830"],
    "instrumentation": ["22840", "22842", "22843", "22844", "22845", "22846", "22847"],
    "pelvic_fixation": ["22848"],
    "decompression": ["63047", "63048", "63052", "63053", "63030", "63035", "63042", "63043", "63005", "63017"],
    "osteotomy_posterior": ["22210", "22212", "22214", "22216"],
    "osteotomy_three_column": ["22206", "22207", "22208"],
    "osteotomy_anterior": ["22220", "22222", "22224", "22226"],
    "si_fusion": ["27278", "27279", "27280"],
    "graft": ["20930", "20931", "20936", "20937", "20938", "20939"],
}
ADD_ONS = {"22614", "22632", "22634", "22585", "22840", "22842", "22843", "22844", "22845", "22846", "22847", "22848",
           "63048", "63052", "63053", "63035", "63043", "22208", "22216", "22226", "20930", "20931", "20936", "20937", "20938", "20939"}  # fmt: skip


def test_cpt_lookup_normalizes_input() -> None:
    for raw in ("22630", " 22630 ", "+22630"):
        entry = cpt.lookup(raw)
        assert entry is not None and entry.code == "22630"
    assert cpt.lookup("+22632") == cpt.lookup("22632")
    assert cpt.lookup("99213") is None
    assert not cpt.is_spine_surgery("99213")


def test_cpt_class_and_add_on_of_every_listed_code() -> None:
    listed = {code for codes in CPT_CLASSES.values() for code in codes}
    assert set(cpt.catalogue()) == listed
    assert set(CPT_CLASSES) == cpt.SPINE_SURGERY_CLASSES
    for cls, codes in CPT_CLASSES.items():
        for code in codes:
            entry = cpt.lookup(code)
            assert entry is not None and entry.procedure_class == cls, code
            assert entry.add_on == (code in ADD_ONS), code
            assert cpt.is_spine_surgery(code)
            assert len(entry.label) <= 90, code  # our short paraphrase, never a CPT descriptor
            assert entry.counts in {"interspace", "vertebral_segment", "procedure", "joint"}
            assert entry.region in {"lumbar", "thoracic", "cervical", "sacroiliac", "any"}
    note = cpt.lookup("27278")
    assert note is not None and note.note is not None and "non-transfixing" in note.note


@pytest.mark.parametrize(
    ("code", "rng"),
    [("22800", (1, 6)), ("22802", (7, 12)), ("22804", (13, None)), ("22842", (3, 6)), ("22843", (7, 12)),
     ("22844", (13, None)), ("22845", (2, 3)), ("22846", (4, 7)), ("22847", (8, None)), ("22630", None)],
)  # fmt: skip
def test_cpt_segment_ranges(code: str, rng: tuple[int, int | None] | None) -> None:
    entry = cpt.lookup(code)
    assert entry is not None and entry.segment_range == rng


def test_procedure_classes() -> None:
    assert cpt.procedure_classes(["22633", "+22634", "22842", "20936", "99213"]) == {"fusion", "instrumentation", "graft"}
    assert cpt.procedure_classes([]) == frozenset()


# --- measurements -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PI-LL mismatch of 20", "pi_ll_mismatch"),
        ("PT 25°", "pelvic_tilt"),
        ("PT 2x/week", None),
        ("SVA 6 cm", "sagittal_vertical_axis"),
        ("SVA +10 cm", "sagittal_vertical_axis"),
        ("Pelvic tilt 31", "pelvic_tilt"),
        ("PI 51 degrees", "pelvic_incidence"),
        ("LL 31°", "lumbar_lordosis"),
        ("Referred to PT", None),
        ("Cobb angle 52°", "cobb_angle"),
        ("2.5 mm in flexion to 6 mm in extension: translation 3.5 mm", "translation_flexion_extension"),
        ("Interpreter used for translation", None),
        ("80% pain relief after the SI joint block", "si_block_relief"),
        ("Pain 7/10", "pain_score"),
        ("pain for 3 weeks", None),
        ("ODI 21", "odi"),
        ("Positive FABER and compression test", "si_provocative_test"),
    ],
)
def test_measurement_match_text(text: str, expected: str | None) -> None:
    assert measurements.match_text(text) == expected


def test_measurement_loinc() -> None:
    assert measurements.match_coding(LOINC, "72514-3") == "pain_score"
    assert measurements.match_coding("loinc", "38208-5") == "pain_score"
    assert measurements.match_coding("http://loinc.org", "97909-6") == "odi"
    assert measurements.match_coding(LOINC, "97908-8") == "odi"
    assert measurements.match_coding(LOINC, "56840-2") is None  # DISCOURAGED per the research note
    assert measurements.match_coding(SNOMED, "72514-3") is None
    assert measurements.match_coding("nope", "72514-3") is None
    for name in measurements.all_names():
        for code in measurements.get(name).loinc:
            assert _loinc_check_ok(code), code


def test_measurement_catalogue() -> None:
    expected = {
        "pelvic_incidence", "lumbar_lordosis", "pi_ll_mismatch", "sagittal_vertical_axis", "pelvic_tilt", "cobb_angle",
        "thoracic_kyphosis", "translation_flexion_extension", "angulation_flexion_extension", "slip_percent",
        "si_provocative_test", "si_block_relief", "pain_score", "odi",
    }  # fmt: skip
    assert measurements.all_names() == expected
    assert measurements.get("translation_flexion_extension").unit == "mm"
    assert measurements.get("angulation_flexion_extension").unit == "deg"
    assert measurements.get("pain_score").value_range == (0, 10)
    pt = {p.text: p for p in measurements.get("pelvic_tilt").phrases}
    assert pt["pt"].abbreviation
    with pytest.raises(KeyError):
        measurements.get("bmi")


def test_si_test_names() -> None:
    tests = {t.key: t for t in measurements.get("si_provocative_test").tests}
    assert {"compression", "thigh_thrust", "faber", "distraction", "gaenslen", "fortin_finger"} <= set(tests)
    assert tests["fortin_finger"].role == "localization"
    found = measurements.match_si_tests("Positive Patrick's test, thigh thrust (P4 test) and Gaenslen’s; Fortin finger test +")
    assert found == {"faber", "thigh_thrust", "gaenslen", "fortin_finger"}
