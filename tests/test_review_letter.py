"""The review letter (contract, "Review letter"): the three seed letters are golden files that read
order by order like the seed documents; POST /review serves them as HTML, Markdown and JSON;
`spine-cds review FILE` prints them. Regenerate the golden files with UPDATE_GOLDEN=1 and read
the diff before committing it."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cds_service.synthetic.builders import IdFactory
from tests.stubs import fhir, seeds

GOLDEN = Path(__file__).parent / "golden"
SEEDS = ("000", "001", "002")


def seed_request(n: str) -> dict:
    """The seed chart with resource ids of its own (a fresh IdFactory), so the letter is the same every time."""
    ids = IdFactory()
    request = fhir.make_request(getattr(seeds, f"seed_{n}_orders")(ids=ids), getattr(seeds, f"seed_{n}_chart")(ids=ids))
    request["hookInstance"] = f"seed-{n}"
    return request


def post_review(http, service, body, accept: str):
    return http.post(service.url + "/review", json=body, headers={"Accept": accept}, timeout=60)


@pytest.mark.parametrize("n", SEEDS)
def test_seed_letters_are_golden(service, http, n):
    response = post_review(http, service, seed_request(n), "text/markdown")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/markdown")
    golden = GOLDEN / f"letter-seed-{n}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(response.text, "utf-8")
    assert response.text == golden.read_text("utf-8")


def headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, re.MULTILINE)


def test_letters_read_order_by_order_with_a_determination_per_code():
    expected = {
        "000": ["ALIF L5-S1: needs documentation", "PSF T10-SACRUM/PELVIS, inpatient: needs documentation",
                "L5-S1 posterior osteotomy: needs documentation"],
        "001": ["Posterior spinal fusion T12-S2 with pelvic fixation: does not meet criteria",
                "Laminectomy L1-S1: needs documentation",
                "Bilateral SI joint fusion devices for baseline ankylosing spondylitis: does not meet criteria"],
        "002": ["Stage 1: L2-L4 fusion with cages, allograft and autograft, inpatient: does not meet criteria",
                "Stage 2: exploration of fusion, decompression, osteotomies, fusion with pedicle screws, pelvic "
                "fixation and SI joint fusion, inpatient: does not meet criteria"],
    }
    for n, names in expected.items():
        letter = (GOLDEN / f"letter-seed-{n}.md").read_text("utf-8")
        assert headings(letter) == names
        for section in letter.split("\n## ")[1:]:
            for title in ("| Code | Procedure | Determination | Why |", "### Reasons", "### Evidence in the chart",
                          "### Sources"):
                assert title in section, (n, section[:80], title)
    seed_001 = (GOLDEN / "letter-seed-001.md").read_text("utf-8")
    fusion = seed_001.split("\n## ")[1]
    assert "Fusion limited to L3-S1, the levels with a documented indication, without pelvic fixation." in fusion
    assert "Decompression alone at L1-L2, L2-L3, L3-L4, L4-L5, L5-S1" in fusion
    assert "| 22848 | Pelvic fixation beyond the sacrum | does not meet criteria |" in fusion
    seed_002 = (GOLDEN / "letter-seed-002.md").read_text("utf-8")
    assert "| 22830 | Exploration of a prior spinal fusion | does not meet criteria (bundled) |" in seed_002
    assert "| 63052 | " in seed_002 and "needs documentation | Formal physical therapy" in seed_002


def test_seed_000_letter_says_where_it_is_stricter_than_the_seed():
    letter = (GOLDEN / "letter-seed-000.md").read_text("utf-8")
    assert letter.count("### Stricter than some reviews") == 3           # every order: PT is the only gap
    assert "formal, supervised physical therapy is required" in letter
    assert "Supports the surgery" in letter and "PI-LL mismatch 20°" in letter   # and the deformity supports it
    assert "### Stricter" not in (GOLDEN / "letter-seed-002.md").read_text("utf-8").split("\n## ")[1]


def test_review_as_html_fit_to_print_and_as_json(service, http):
    html = post_review(http, service, seed_request("001"), "text/html")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "<table>" in html.text and "<h2>Posterior spinal fusion T12-S2" in html.text and "@media print" in html.text
    assert "<script" not in html.text.lower()
    data = post_review(http, service, seed_request("001"), "application/json").json()
    assert [o["determination"] for o in data["orders"]] == ["does-not-meet", "needs-documentation", "does-not-meet"]
    codes = {c["code"]: c["determination"] for c in data["orders"][0]["codes"]}
    assert codes == {"22633": "does-not-meet", "22634": "does-not-meet", "22848": "does-not-meet"}
    assert all(e["reference"] for o in data["orders"] for e in o["evidence"])


def test_review_of_a_bundle_matches_the_request(service, http, tmp_path):
    from cds_service.synthetic import synthesize
    instance = synthesize("seed-001", 1, 3)[0]
    from_bundle = post_review(http, service, instance.bundle, "application/json").json()
    from_request = post_review(http, service, instance.request, "application/json").json()
    assert from_bundle["orders"] == from_request["orders"]


@pytest.mark.parametrize("body, accept, status, field", [
    ({"resourceType": "Patient"}, "text/html", 400, "$.resourceType"),
    ({"hook": "order-sign"}, "text/html", 400, None),
    (None, "image/png", 406, "Accept"),
])
def test_review_errors_are_operation_outcomes(service, http, body, accept, status, field):
    response = post_review(http, service, body if body is not None else seed_request("000"), accept)
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" if "resourceType" in outcome else outcome["operationOutcome"]
    if field:
        assert field in json.dumps(outcome)


def test_cli_review_prints_and_writes_the_letter(tmp_path):
    from click.testing import CliRunner

    from cds_service.cli import main
    request_file = tmp_path / "seed-000.request.json"
    request_file.write_text(json.dumps(seed_request("000")), "utf-8")
    result = CliRunner().invoke(main, ["review", str(request_file)])
    assert result.exit_code == 0, result.output
    assert result.output == (GOLDEN / "letter-seed-000.md").read_text("utf-8")
    out = tmp_path / "letter.html"
    result = CliRunner().invoke(main, ["review", "--format", "html", "--out", str(out), str(request_file)])
    assert result.exit_code == 0 and out.read_text("utf-8").startswith("<!doctype html>")
