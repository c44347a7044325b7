"""The chart -> facts pre-filter never hides a match.

fhir_mappings skips the expensive reading of a text when a cheap word check says no phrase can
match it (terminology.valuesets.PhraseGate, level_facts.may_state, measures.may_measure,
conservative_care.abbreviated_kinds). These tests hold that check to the data it filters for:
every phrase and synonym of the terminology data files passes its gate, the gate's notion of a
word is the one the phrase patterns bound on (over all of Unicode), the hand-written regexes keep
their words, and the mappers give the same facts with the filter switched off. build_facts' one
pass gives what the map_* functions give one by one.
"""
from __future__ import annotations

import json
import re
from datetime import date
from importlib import resources

import pytest

from fhir_mappings import care, diagnoses, level_facts, measures, red_flags, resources as fhir_resources
from fhir_mappings.build import TEXT_CACHES, build_facts
from fhir_mappings.chart import Chart
from fhir_mappings.resources import is_refuted
from terminology import conservative_care, measurements, valuesets
from terminology.valuesets import PhraseGate, text_tokens
from tests.stubs import fhir, seeds


def _data(name: str) -> dict:
    return json.loads(resources.files("terminology").joinpath("data", name).read_text(encoding="utf-8"))


VALUESETS = _data("valuesets.json")["valuesets"]
CARE = _data("conservative_care.json")["kinds"]
PROCEDURES = _data("procedure_text.json")["classes"]
MEASUREMENTS = _data("measurements.json")["measurements"]

_CACHES = TEXT_CACHES + (fhir_resources._system,)


def _clear_caches() -> None:
    for cached in _CACHES:
        cached.cache_clear()


@pytest.fixture
def fresh_caches():
    _clear_caches()
    yield
    _clear_caches()


def in_texts(phrase: str) -> list[str]:
    """Ways a chart writes a phrase: as is, in capitals, in a sentence, with typographic dashes and
    quotes, across a line break, hyphenated."""
    words = phrase.split()
    texts = [phrase, phrase.upper(), phrase.title(), f"Impression: {phrase}, see above.", f"({phrase})",
             phrase.replace("-", "\u2013").replace("'", "\u2019"), "\n  ".join(words)]
    if len(words) > 1:
        texts.append("-".join(words))
    return texts


# --- what a word is -----------------------------------------------------------------------------------

def test_tokens_are_what_the_phrase_bounds_treat_as_letters_over_all_of_unicode():
    """Phrase patterns are bounded by (?<![a-z0-9]) / (?<![A-Za-z0-9]) under re.IGNORECASE (and
    "fused" by (?<![\\w-])): a token is a run of exactly those characters, each folded onto the
    ASCII character it matches; lower-casing a phrase never turns a bound into a letter."""
    bound = re.compile(r"[a-z0-9]", re.IGNORECASE).fullmatch
    bound_care = re.compile(r"[A-Za-z0-9]", re.IGNORECASE).fullmatch
    word = re.compile(r"\w").fullmatch
    tokens = text_tokens.__wrapped__          # uncached, so this loop does not flood the cache
    letters = []
    for codepoint in range(0x110000):
        char = chr(codepoint)
        if bound(char):
            letters.append(char)
            assert bound_care(char) and word(char)
        else:
            assert not bound_care(char)
            lower = char.lower()
            assert lower == char or not any(bound(c) for c in lower), repr(char)
    assert len(letters) > 62          # ASCII letters and digits, plus the case-folding extras
    for char in letters:
        [token] = tokens(char)
        assert len(token) == 1 and token.isascii() and token == token.lower()
        assert re.fullmatch(token, char, re.IGNORECASE), repr(char)
    # Tokens of non-ASCII text: the long s and the Kelvin sign are letters to re.IGNORECASE.
    assert tokens("\u017ftenosis at L4\u20135, \u212aYPHOSIS") == {"stenosis", "at", "l4", "5", "kyphosis"}
    assert tokens("caf\u00e9 stenosis") == {"caf", "stenosis"}


def test_phrase_gate_is_a_superset_by_words():
    gate = PhraseGate({"stenosis": ["spinal stenosis", "stenotic"], "slip": ["pi-ll"], "deg": ["\u00b0"]},
                      {"curve": ["curve"]})
    assert gate.candidates("Severe SPINAL\n stenosis.") == {"stenosis", "deg"}
    assert gate.candidates("spinal canal") == {"deg"}           # "stenosis" missing: ruled out
    assert "slip" in gate.candidates("PI\u2013LL 12")
    assert "curve" in gate.candidates("35 degree curve")
    assert gate.groups == {"stenosis", "slip", "deg", "curve"}
    assert gate.could_match("anything")                         # "°" has no word: never ruled out
    assert not PhraseGate({"stenosis": ["spinal stenosis"]}).could_match("stenosis of the spinalis canal")
    assert PhraseGate({"stenosis": ["spinal stenosis"]}).could_match("stenosis of the spinal canal")


# --- every phrase of the data files passes its gate ---------------------------------------------------------

@pytest.mark.parametrize("valueset", VALUESETS, ids=lambda vs: vs["name"])
def test_every_valueset_phrase_passes_the_valueset_gate(valueset):
    gate = valuesets._index().gate
    for phrase in valueset["text"]:
        for text in in_texts(phrase):
            assert valueset["name"] in gate.candidates(text), (phrase, text)
        assert (valueset["name"], 0, len(phrase)) in valuesets.find_text(phrase) or valueset["negative_text"], phrase


@pytest.mark.parametrize("kind", sorted(CARE))
def test_every_care_phrase_and_abbreviation_passes_the_care_gate(kind):
    for phrase in CARE[kind]["text"]:
        for text in in_texts(phrase):
            assert kind in conservative_care.care_gate().candidates(text), (phrase, text)
        assert kind in {k for k, _ in conservative_care.care_kinds_in_text(f"tried {phrase} for 6 weeks")}, phrase
    for abbreviation in CARE[kind]["abbreviations"]:
        text = f"continue {abbreviation.upper()} twice weekly"
        assert kind in conservative_care.abbreviated_kinds(text)
        assert kind in {k for k, _ in conservative_care.care_kinds_in_text(text)}, abbreviation


@pytest.mark.parametrize("cls", sorted(PROCEDURES))
def test_every_procedure_phrase_passes_the_procedure_gate(cls):
    for phrase in PROCEDURES[cls]:
        for text in in_texts(phrase):
            assert cls in conservative_care.procedure_gate().candidates(text), (phrase, text)
            if cls in level_facts.FUSION_CLASSES:
                assert level_facts.may_state(text), text       # a fusion states a prior fusion
        assert cls in {c for c, _ in conservative_care.procedure_classes_in_text(f"s/p {phrase} in 2019")} or any(
            len(other) > len(phrase) and phrase in other for phrases in PROCEDURES.values() for other in phrases), phrase


@pytest.mark.parametrize("measurement", MEASUREMENTS, ids=lambda m: m["name"])
def test_every_measurement_phrase_passes_the_measurement_gates(measurement):
    provocative = measurement["name"] == "si_provocative_test"      # read as SI testing, not as a number
    for entry in measurement["text"]:
        phrase = entry["phrase"]
        for text in in_texts(phrase):
            if provocative:
                assert measures.names_si_test(text), (phrase, text)
                assert measures.may_measure(text) or not measures._PROVOCATIVE.search(text), (phrase, text)
            else:
                assert measures._PHRASE_GATE.could_match(text), (phrase, text)
        # A name with a number next to it is always read (may_measure); without a number it may not be.
        for text in (f"{phrase} 25\u00b0", f"{phrase}: 12 mm", f"a 31% {phrase}",
                     f"31 degrees of marked {phrase}", f"{phrase} was measured at approximately 25 degrees"):
            assert measures.may_measure(text), text
    for test in measurement.get("tests", ()):
        for phrase in test["text"]:
            variants = [phrase] + ([phrase + "s"] if phrase.endswith("test") else [])
            for variant in variants:
                for text in in_texts(variant):
                    assert test["key"] in measurements.si_test_gate().candidates(text), (variant, text)
                    assert measures.names_si_test(text), text
                assert measures.may_measure(f"Positive {variant}."), variant
                assert test["key"] in {k for k, _, _ in measurements.find_si_tests(f"Positive {variant}.")}, variant


def test_every_level_kind_phrase_passes_the_kind_gate():
    kinds = level_facts._TEXT_SETS
    by_name = {vs["name"]: vs for vs in VALUESETS}
    for kind, sets in kinds.items():
        # Claudication is a symptom: level_facts never reads it as stenosis at a level.
        phrases = [p for name in sets for p in by_name[name]["text"] if "claudication" not in p]
        phrases += list(level_facts._EXTRA_PHRASES.get(kind, ()))
        for phrase in phrases:
            for text in in_texts(phrase):
                assert kind in level_facts._KIND_GATE.candidates(text), (kind, phrase, text)
                assert level_facts.may_state(text), text
    assert level_facts.may_state("L4-5 solidly fused")


# The hand-written regexes of level_facts: examples of what each matches.
REGEX_EXAMPLES = {
    "instability": ["dynamic anterolisthesis at L4-5", "dynamic listhesis", "DYNAMIC RETROLISTHESIS"],
    "stenosis": ["narrowing of the left neural foramen", "narrowing of canal", "narrowing of the lateral recesses"],
    "deformity": ["straightening of the normal lumbar lordosis", "loss of the normal lordosis",
                  "reversal of cervical lordosis", "decreased lumbar lordosis", "35 degree thoracic curve",
                  "a 12\u00b0 lumbar curve"],
    "hardware_failure": ["halo around the left L5 screw", "lucency surrounding the screws", "halos around screws",
                         "Fractured right L5 pedicle screw", "broken rod at L4-5", "Backout of the left L4 pedicle screw",
                         "loosening of the hardware", "the S1 screws have backed out"],
}


def test_hand_written_regexes_keep_their_words():
    assert set(level_facts._EXTRA_REGEXES) == set(level_facts._EXTRA_REGEX_ANCHORS) == set(REGEX_EXAMPLES)
    for kind, regexes in level_facts._EXTRA_REGEXES.items():
        words = level_facts._EXTRA_REGEX_ANCHORS[kind]
        for regex in regexes:
            # Each regex spells one of its kind's words literally (outside any optional part: by review).
            assert any(word in regex for word in words), (kind, regex)
            pattern = level_facts._pattern((), [regex])
            examples = [t for t in REGEX_EXAMPLES[kind] if pattern.search(t)]
            assert examples, (kind, regex)            # the examples still exercise every regex
            for text in examples:
                assert kind in level_facts._KIND_GATE.candidates(text), (kind, text)
                assert level_facts.may_state(text), text


# --- the mappers give the same facts with the filter off ------------------------------------------------------

def _all_phrases() -> list[str]:
    phrases = [p for vs in VALUESETS for p in vs["text"] + vs.get("negative_text", [])]
    phrases += [p for k in CARE.values() for p in k["text"]]
    phrases += [a.upper() for k in CARE.values() for a in k["abbreviations"]]
    phrases += [p for c in PROCEDURES.values() for p in c]
    for m in MEASUREMENTS:
        phrases += [t["phrase"] for t in m["text"]] + [p for t in m.get("tests", ()) for p in t["text"]]
    phrases += [p for ps in level_facts._EXTRA_PHRASES.values() for p in ps]
    phrases += [t for ts in REGEX_EXAMPLES.values() for t in ts]
    return sorted(set(phrases))


TEMPLATES = (
    "{0}",
    "No {0} at L2-3; severe {1} at L4-5 and L5-S1, {2} measuring 12 mm. Positive {3}.",
    "L4-5: {0} 25\u00b0\nL5-S1: mild {1} without {2}; s/p L4-5 fusion, {3} 80% relief.",
    "History of {0} \u2013 resolved. Continue PT, {1} and HEP; {2} 7/10. PI 51\u00b0, {3} 30\u00b0",
    "{0} was measured at approximately 25 degrees; 12 mm of marked {1}. {2}, {3} roughly 40%.",
)


def _corpus() -> list[str]:
    phrases = _all_phrases()
    texts = []
    for t, template in enumerate(TEMPLATES):
        for i in range(0, len(phrases), 4):
            group = [phrases[(i + k + t) % len(phrases)] for k in range(4)]
            texts.append(template.format(*group))
    return texts + ["\u017ftenosis at L4\u20135", "\u212aYPHOSIS", "cauda equina was ruled out", "slip and fall"]


def _chart(texts: list[str]) -> list[dict]:
    out = []
    for i, text in enumerate(texts):
        d = f"2024-0{1 + i % 9}-1{i % 9}"
        kind = i % 5
        if kind == 0:
            out.append(fhir.condition(text[:60], onset=d, note=text))
        elif kind == 1:
            out.append(fhir.report(text[:30], text, d))
        elif kind == 2:
            out.append(fhir.observation(text[:40], value=25, unit="deg", effective=d, value_string=text))
        elif kind == 3:
            out.append(fhir.procedure(text[:40], performed=d, note=text))
        else:
            out.append(fhir.medication(text[:40], d))
    return out


def _facts(resources, orders):
    return (care.map_care(resources), red_flags.map_red_flags(resources),
            level_facts.map_level_facts(resources, orders), measures.map_measurements(resources),
            diagnoses.map_diagnoses(resources))


def _text_readings(texts):
    return [(valuesets.find_text(t), [(k, m.span()) for k, m in conservative_care.care_kinds_in_text(t)],
             [(c, m.span()) for c, m in conservative_care.procedure_classes_in_text(t)],
             measurements.find_si_tests(t)) for t in texts]


def _filter_off(monkeypatch):
    monkeypatch.setattr(PhraseGate, "candidates", lambda self, text: self.groups)
    monkeypatch.setattr(PhraseGate, "could_match", lambda self, text: True)
    monkeypatch.setattr(conservative_care, "abbreviated_kinds",
                        lambda text: {kind.name for kind in conservative_care.care_kinds()})
    monkeypatch.setattr(level_facts, "may_state", lambda text: True)
    monkeypatch.setattr(measures, "may_measure", lambda text: True)
    monkeypatch.setattr(measures, "names_si_test", lambda text: True)


def test_mappers_give_the_same_facts_with_the_filter_off(monkeypatch, fresh_caches):
    texts = _corpus()
    resources_ = _chart(texts) + seeds.seed_000_chart() + seeds.seed_001_chart() + seeds.seed_002_chart()
    orders = [fhir.service_request(t[:80], note=t) for t in texts[::25]]
    filtered = _facts(resources_, orders), _text_readings(texts)
    assert sum(len(f) for f in filtered[0]) > 500           # the corpus does read as facts
    _clear_caches()
    _filter_off(monkeypatch)
    unfiltered = _facts(resources_, orders), _text_readings(texts)
    names = ("care", "red_flags", "level_facts", "measurements", "diagnoses")
    for name, with_filter, without_filter in zip(names, filtered[0], unfiltered[0]):
        assert with_filter == without_filter, name
    assert filtered[1] == unfiltered[1]


# --- one pass, caches ------------------------------------------------------------------------------------------

def test_build_facts_one_pass_equals_the_mappers_one_by_one(fresh_caches):
    refuted = fhir.with_fields(fhir.condition("Cauda equina syndrome", "G83.4"),
                               verificationStatus=fhir.verification("refuted"))
    for chart_resources, orders in ((seeds.seed_000_chart(), seeds.seed_000_orders()),
                                    (seeds.seed_001_chart(), seeds.seed_001_orders()),
                                    (seeds.seed_002_chart() + [refuted] + _chart(_corpus()[:200]),
                                     seeds.seed_002_orders())):
        chart = Chart.build("pat-1", orders, chart_resources, date(2025, 6, 1))
        facts = build_facts(chart)
        record = [r for r in chart.resources if not is_refuted(r)]
        assert facts.care == care.map_care(record)
        assert facts.red_flags == red_flags.map_red_flags(record)
        assert facts.level_facts == level_facts.map_level_facts(record, chart.draft_orders)
        assert facts.measurements == measures.map_measurements(record)
        assert facts.diagnoses == diagnoses.map_diagnoses(record)


def test_cached_readings_are_not_shared_mutable_state(fresh_caches):
    chart = seeds.seed_001_chart()
    first = _facts(chart, [])
    hits = valuesets.find_text("severe spinal stenosis")
    hits.clear()
    assert valuesets.find_text("severe spinal stenosis")
    assert _facts(chart, []) == first          # now served from the caches


def test_no_clinical_text_outlives_build_facts():
    from datetime import date

    from fhir_mappings.build import TEXT_CACHES, build_facts
    from fhir_mappings.chart import Chart
    from tests.stubs import seeds

    build_facts(Chart.build("pat-1", seeds.seed_001_orders(), seeds.seed_001_chart(), date(2025, 6, 20)))
    assert all(cached.cache_info().currsize == 0 for cached in TEXT_CACHES)
