"""The level reader's vocabulary as data (issue 10, Deliver 5): terminology/data/text/level_details.yaml
compiles through the one phrase compiler (terminology.phrases.compile_regex), every entry catches what
its comment says, and the level reader reads with it (a word added to the data changes the reading)."""
from __future__ import annotations

import pytest
import yaml

from fhir_mappings import level_facts
from terminology.phrases import compile_regex, regex_source
from tests.stubs import fhir

DATA = level_facts._DETAILS

# entry -> (a text it catches, a text it does not)
CATCHES = {
    "phrase_split": ("stenosis and a bulge", "standing"),
    "retro": ("Retrolisthesis", "anterolisthesis"),
    "other_findings": ("disc bulge", "disc space"),
    "history_cue": ("s/p", "plan"),
    "plan_cue": ("planned", "prior"),
    "solid_after": (" is solid", " is planned"),
    "fused": ("solidly fused", "fusedness"),
    "future_before": ("to be ", "was "),
    "stenosis_grade": ("moderate to severe", "moderation"),
    "listhesis_grade": ("Meyerding grade II", "grade school"),
    "translation_mm": ("4 mm of translation", "4 mm disc"),
    "any_mm": ("4 mm", "4 cm"),
    "cobb": ("Cobb angle 25°", "Cobb angle"),
    "hedge": ("very subtle", "severe"),
    "study_lead_in": ("MRI lumbar spine 10/2/2024: grade 2", "Grade 2 anterolisthesis: see MRI"),
    "nerve_root": ("the traversing L5 nerve roots", "stenosis at L5-S1"),
}


def test_every_entry_compiles_and_is_used():
    assert set(DATA["regexes"]) == set(CATCHES) | {"link"}
    assert set(level_facts._REGEXES) == set(DATA["regexes"])
    assert len(level_facts._DESTABILIZING) == len(DATA["destabilizing"])


@pytest.mark.parametrize("name", CATCHES)
def test_entry_catches_what_it_says(name):
    caught, missed = CATCHES[name]
    pattern = compile_regex(DATA["regexes"][name])
    assert pattern.search(caught), name
    assert not pattern.search(missed), name


@pytest.mark.parametrize("text, destabilizing", [
    ("60% facetectomy", True), ("facetectomy of more than 50%", True), ("complete facetectomy", True),
    ("wide decompression with facetectomy", True), ("resection of the pars", True),
    ("partial facetectomy", False), ("50% facetectomy", False), ("at least 50% facetectomy", True),
])
def test_destabilizing_entries(text, destabilizing):
    found = [m for p in level_facts._DESTABILIZING for m in p.finditer(text) if level_facts._destabilizing(m)]
    assert bool(found) is destabilizing


def test_alternatives_one_per_line_join_into_one_pattern():
    spec = {"before": r"\b", "after": r"\b", "any_of": ["a", "b(?:c)?"]}
    assert regex_source(spec) == r"\b(?:a|b(?:c)?)\b"
    grouped = {"before": "", "after": "", "groups": {"x": ["a", "b"], "y": ["c"]}}
    assert compile_regex(grouped).match("C").lastgroup == "y"


def test_a_word_added_to_the_data_reads_in_the_text(monkeypatch):
    """The reader reads its grades from the data: 'gross' stenosis grades nothing until the data says severe."""
    report = fhir.report("MRI", "Gross central canal stenosis at L4-5.", "2025-05-01")
    (before,) = level_facts.map_level_facts([report])
    assert before.severity is None
    spec = yaml.safe_load(yaml.safe_dump(DATA["regexes"]["stenosis_grade"]))
    spec["groups"]["severe"].append("gross")
    monkeypatch.setattr(level_facts, "_STENOSIS_GRADE", compile_regex(spec))
    level_facts._read_cached.cache_clear()
    try:
        (after,) = level_facts.map_level_facts([report])
    finally:
        level_facts._read_cached.cache_clear()
    assert after.severity == "severe"
