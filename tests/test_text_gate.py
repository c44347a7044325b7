"""The fast paths of the text reader give the answers of the slow ones.

The literal gate (fhir_mappings/text/gate.py) lets a reader skip a pattern where none of its
literals stand; that is only sound if every match of every gated pattern holds one of them. The
trigger scan, the heading scan and the false-stop mask each have a reference (the whole-text
token scan, the pattern's own finditer, the original substitution) that they must equal.
"""
from __future__ import annotations

import importlib
import re

import pytest

from benchmarks.charts import documents
from cds_service.synthetic import SCENARIOS, SHAPES, synthesize
from fhir_mappings import clinical, measures  # noqa: F401  (registers their gated patterns)
from fhir_mappings.attachments import read_chart, forget_chart
from fhir_mappings.resources import narrative_texts
from fhir_mappings.text.gate import LITERALS, gated
from terminology.phrases import gate_literals, required_literals
from terminology.valuesets import normalize_text

doc = importlib.import_module("fhir_mappings.text.document")

EDGES = [
    "No evidence of fracture. s/p L4-5 ESI; n/o pain? no/a a/no mother's father's no'x",
    "Pt denies tobacco use, e.g. no smoking (i.e. never). Dr. Smith vs. Dr. Jones, approx. 3.5 mm; fig. 2.",
    "IMPRESSION:\nNo acute fracture.\nFAMILY HISTORY: father had a spinal tumor.\nPLAN: consider PT if pain persists",
    "HISTORY  \n  former smoker, quit 2019. 1.e.g. i.e.g. e.g.e.g.",
    "Smoking: never — ‘nonsmoker’. Pain 7/10 – radiating to the left leg. NRS 6.",
    "ſmoking İnability to walk ıs dıffıcult; KNEE jerk absent; µg dose",
    "no\nevidence of stenosis\n? radiculopathy",
    "Weakness 4/5 L EHL; numbness dorsum of the foot; L5 radiculopathy; disc extrusion compressing the L5 root.",
    "PI 51°, LL 31°; PI/LL 52/48; SVA 4.5 cm; 80% relief after SI joint injection; FABER positive, 3/5 provocative tests",
]


def _corpus() -> list[str]:
    texts: list[str] = list(EDGES)
    resources = []
    for name in SCENARIOS:
        for shape in SHAPES:
            for synthetic in synthesize(name, 1, 1, shape):
                resources += [e["resource"] for e in synthetic.bundle["entry"]]
    from datetime import date
    import random
    resources += documents(random.Random(3), 20, 5, "pat-1", date(2025, 6, 1))
    read_chart(resources)
    try:
        for resource in resources:
            texts += narrative_texts(resource)
    finally:
        forget_chart()
    return list(dict.fromkeys(texts))


CORPUS = _corpus()


def _gated_texts() -> list[str]:
    """The texts the gate is used on: those without a character str.lower() does not fold as re does."""
    doc.Document("x").found_in()     # builds the automaton and its risky characters
    return [t for t in CORPUS if not LITERALS.risky.search(normalize_text(t))]


def _patterns() -> list[re.Pattern]:
    return [re.compile(pattern, flags) for pattern, flags in LITERALS._by_pattern]


def test_every_match_of_a_gated_pattern_holds_one_of_its_literals():
    checked = 0
    for pattern in _patterns():
        literals = required_literals(pattern)
        if literals is None:
            continue
        for text in _gated_texts():
            folded = normalize_text(text)
            for match in pattern.finditer(text):
                lowered = folded[match.start():match.end()].lower()
                assert any(literal in lowered for literal in literals), (pattern.pattern, match.group())
                checked += 1
    assert checked > 300     # the corpus exercises the patterns


@pytest.mark.parametrize("pattern, text, literals", [
    (r"\b(?:left|lt|l\s?>\s?r)\b", "L > R", {">"}),
    (r"abc?d", "abd", {"ab"}),
    (r"x*", "", None),
    (r"\bcotinine\b", "Cotinine", {"cotinine"}),
])
def test_required_literals_of_small_patterns(pattern, text, literals):
    found = required_literals(re.compile(pattern, re.IGNORECASE))
    if literals is None:
        assert found is None
    else:
        assert set(found) >= literals and any(s in text.lower() for s in found)


def test_an_anchored_pattern_never_matches_before_its_first_literal():
    for pattern in _patterns():
        literals, anchored = gate_literals(pattern)
        if not anchored:
            continue
        for text in _gated_texts():
            lowered = normalize_text(text).lower()
            for match in pattern.finditer(text):
                assert lowered.startswith(tuple(literals), match.start()), (pattern.pattern, match.group())


def test_gated_search_and_finditer_answer_as_the_pattern():
    for pattern in _patterns():
        gate = gated(pattern)
        for text in CORPUS:
            read = doc.Document(text)
            assert [m.span() for m in read.finditer(gate)] == [m.span() for m in pattern.finditer(read.folded)]
            for lo, hi in read.spans():
                sentence = text[lo:hi]
                found = read.found_in(lo, hi)
                expected = pattern.search(sentence)
                got = gate.search(found, sentence, lo)
                assert (got and got.span()) == (expected and expected.span()), (pattern.pattern, sentence)


def test_triggers_headings_and_mask_equal_their_references():
    rules = doc.section_rules()
    for text in CORPUS:
        read = doc.Document(text)
        assert read.triggers == read.triggers_by_token(), text
        assert [m.span() for m in doc._headings(rules.pattern, read.folded)] == \
               [m.span() for m in rules.pattern.finditer(read.folded)]
        assert read.masked == doc._FALSE_STOPS.sub(lambda m: m.group().replace(".", " "), normalize_text(text))


def test_a_text_with_a_risky_character_is_read_without_the_gate():
    read = doc.Document("ſmoking daily")
    assert read.found_in() is doc.EVERYTHING
    assert clinical.read_text("ſmoking daily, a pack a day") == clinical.read_text.__wrapped__("ſmoking daily, a pack a day")
