"""The sentence table (tests/data/sentences.yaml): for every row, each mention's assertion, and the
facts the service builds from the text hold the mention exactly when it counts."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from fhir_mappings.build import build_facts
from fhir_mappings.chart import Chart
from fhir_mappings.level_facts import LEVEL_KINDS
from fhir_mappings.red_flags import RED_FLAG_SETS
from fhir_mappings.text import ASSERTIONS, document
from terminology import measurements
from terminology.levels import find_levels
from tests.stubs import fhir

TABLE = Path(__file__).with_name("data") / "sentences.yaml"
ROWS = yaml.safe_load(TABLE.read_text("utf-8"))
CARE_KINDS = {"physical_therapy", "injection", "medication", "other"}
# History is the point of these: a fusion done stays done; care done in the past is care done.
HISTORY_COUNTS = {"prior_fusion"} | CARE_KINDS


def span_of(text: str, words: str, nth: int = 1) -> tuple[int, int]:
    lowered, start = text.lower(), -1
    for _ in range(nth):
        start = lowered.index(words.lower(), start + 1)
    return start, start + len(words)


def expectations():
    for index, row in enumerate(ROWS):
        for k, expect in enumerate(row["expect"]):
            yield pytest.param(row, expect, id=f"{index}.{k}:{row['text'][:40]}")


def test_table_is_large_and_well_formed():
    assert len(ROWS) >= 150
    sources = {row["from"].split(" (")[0] for row in ROWS}
    assert {"radiology impression", "radiology findings", "H&P", "consult note", "PT note", "procedure note",
            "problem list"} <= sources
    for row in ROWS:
        for expect in row["expect"]:
            assert expect["assertion"] in ASSERTIONS, row
            span_of(row["text"], expect["words"], expect.get("nth", 1))


@pytest.mark.parametrize("row, expect", list(expectations()))
def test_assertion(row, expect):
    start, end = span_of(row["text"], expect["words"], expect.get("nth", 1))
    assert document(row["text"]).assertion(start, end) == expect["assertion"]


def facts_of(row: dict):
    if row.get("procedure"):
        resource = fhir.procedure(row["procedure"], performed="2025-05-01", note=row["text"])
    else:
        resource = fhir.report("Clinical note", row["text"], "2025-05-01")
    return build_facts(Chart.build("pat-1", [], [resource], date(2025, 6, 1)), orders=())


def counts(expect: dict) -> bool:
    if expect.get("anatomy") or expect.get("absent"):
        return False
    return expect["assertion"] == "present" or (expect["assertion"] == "historical"
                                                 and expect["concept"] in HISTORY_COUNTS)


def interspace(level: str):
    return find_levels(level)[0].range.interspaces()[0]


def found(facts, expect: dict) -> list:
    concept = expect["concept"]
    if concept in LEVEL_KINDS:
        hits = [f for f in facts.level_facts if f.kind == concept and f.present]
        if "level" in expect:
            hits = [f for f in hits if f.interspace == interspace(expect["level"])]
        return hits
    if concept in RED_FLAG_SETS:
        return [f for f in facts.red_flags if f.kind == concept]
    if concept in CARE_KINDS:
        return [c for c in facts.care if c.kind == concept]
    if concept in measurements.all_names():
        return [m for m in facts.measurements if m.name == concept and m.value is not None]
    raise AssertionError(f"unknown concept {concept!r}")


@pytest.mark.parametrize("row", [pytest.param(r, id=f"{i}:{r['text'][:40]}") for i, r in enumerate(ROWS)])
def test_facts(row):
    facts = facts_of(row)
    checked = [e for e in row["expect"] if e["concept"] != "mention"]
    for expect in checked:
        hits = found(facts, expect)
        if counts(expect):
            assert hits, f"{expect} not read from {row['text']!r}"
            if "value" in expect:
                assert any(abs(h.value - expect["value"]) < 1e-6 for h in hits), (expect, hits)
            if "count" in expect:
                assert len(hits) == expect["count"], hits
            if "start" in expect:
                assert any(h.start == expect["start"] for h in hits), (expect, hits)
            if "end" in expect:
                assert any(h.end == expect["end"] for h in hits), (expect, hits)
        elif not any(counts(other) and other["concept"] == expect["concept"]
                     and ("level" not in expect or other.get("level") == expect["level"]) for other in checked):
            assert not hits, f"{expect} should not count in {row['text']!r}: {hits}"
