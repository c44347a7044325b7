"""Cards a surgeon reads in five seconds, over every synthetic scenario, the seed charts and the
stored chart fixture, in a hospital and a payer deployment: summary <= 139 and detail <= 600
characters, at most three dated evidence lines, one rule line, and no developer output (Python
reprs, snake_case identifiers, "(s)" plurals) anywhere a person reads."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cds_service.synthetic import SCENARIOS, synthesize
from tests.conftest import SERVICE_PATH, start_service
from tests.stubs import fhir, seeds

REPR = re.compile(r"\[['\"]|['\"]\]|\{['\"]|\(['\"]|\bNone\b|\bTrue\b|\bFalse\b|<\w[\w.]* object|\w+\(\w+=")
SNAKE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")
PLURAL_S = re.compile(r"\w\(s\)")
EVIDENCE_LINE = re.compile(r"^- (\d{4}-\d{2}-\d{2}|undated) · ", re.MULTILINE)


def problems(text: str) -> list[str]:
    found = []
    for name, pattern in (("repr", REPR), ("snake_case", SNAKE), ("(s)", PLURAL_S)):
        found += [f"{name}: {m.group(0)!r}" for m in pattern.finditer(text)]
    return found


def read_texts(answer: dict):
    """(where, text) for every string a person reads in an answer."""
    for card in answer["cards"]:
        topic = card["source"]["topic"]["code"]
        yield f"{topic}.summary", card["summary"]
        yield f"{topic}.detail", card.get("detail", "")
        yield f"{topic}.display", card["source"]["topic"]["display"]
        for link in card.get("links", []):
            yield f"{topic}.link", link["label"]
        for reason in card.get("overrideReasons", []):
            yield f"{topic}.override", reason["display"]
        for suggestion in card.get("suggestions", []):
            yield f"{topic}.suggestion", suggestion["label"]
            for action in suggestion["actions"]:
                yield f"{topic}.action", action["description"]
    for action in answer.get("systemActions", []):
        yield "coverage.description", action["description"]
        for ext in action["resource"].get("extension", []):
            for part in ext.get("extension", []):
                if part["url"] == "reason":
                    yield "coverage.reason", part["valueCodeableConcept"]["text"]


def check_answer(answer: dict, label: str) -> None:
    for card in answer["cards"]:
        topic = card["source"]["topic"]["code"]
        assert len(card["summary"]) <= 139, (label, card["summary"])
        assert len(card.get("detail", "")) <= 600, (label, topic, len(card["detail"]), card["detail"])
        assert len(EVIDENCE_LINE.findall(card.get("detail", ""))) <= 3, (label, card["detail"])
        if topic not in ("data-unavailable", "criteria-met"):
            assert card["detail"].count("Rule: ") == 1, (label, card["detail"])
            assert card["links"] and all(link["type"] == "absolute" for link in card["links"]), (label, topic)
    topics = [c["source"]["topic"]["code"] for c in answer["cards"]]
    assert len(topics) == len(set(topics)), (label, topics)            # one card per topic
    for where, text in read_texts(answer):
        assert not problems(text), (label, where, problems(text), text)


def requests():
    for name in SCENARIOS:
        yield name, synthesize(name, 1, 7)[0].request
    for n in ("000", "001", "002"):
        yield f"seed-{n}", fhir.make_request(getattr(seeds, f"seed_{n}_orders")(), getattr(seeds, f"seed_{n}_chart")())
    chart = json.loads((Path(__file__).parent / "fixtures" / "fhir" / "chart_basic.json").read_text())
    resources = [e["resource"] for e in chart["entry"]]
    fusion = fhir.service_request("TLIF L4-L5", cpts=["22633"], body_site="L4-L5")
    yield "chart_basic", fhir.make_request([fusion], resources)


CASES = list(requests())


@pytest.fixture(scope="module")
def payer(tmp_path_factory):
    with start_service(tmp_path_factory.mktemp("payer"), CDS_COVERAGE_INFORMATION="required") as server:
        yield server


@pytest.mark.parametrize("label, request_body", CASES, ids=[c[0] for c in CASES])
def test_card_text_is_short_and_reads_as_english(order_sign, payer, http, label, request_body):
    check_answer(order_sign(request_body), label)
    if any(r["resourceType"] == "Coverage" for e in request_body["prefetch"].get("coverage", {}).get("entry", [])
           for r in [e["resource"]]):
        response = http.post(payer.url + SERVICE_PATH, json=request_body, timeout=30)
        assert response.status_code == 200, response.text
        check_answer(response.json(), label + " (payer)")


def test_the_checks_catch_developer_output():
    """The patterns must fail on what the issue found in cards."""
    for bad in ("['compression', 'thigh_thrust']", "1 mention(s)", "pi_ll_mismatch_deg", "value None",
                "Point(code='x')"):
        assert problems(bad), bad
    for good in ("PI-LL mismatch 20° (threshold > 10°)", "PT 2025-03-03 to 2025-04-07: 6 visits over 6 weeks",
                 "Rule: Every fused level has a documented indication (nass-2014)"):
        assert not problems(good), good
