"""`spine-cds scenarios`, `synth` and `evaluate` (cds_service/cli.py), through click's CliRunner."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from criteria.topics import PATIENT_FACTORS as ISSUE_13_TOPICS
from cds_service.synthetic import SCENARIOS


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args])
    return invoke


def topics_of(answer: dict) -> set[str]:
    return {c["source"]["topic"]["code"] for c in answer["cards"]}


def synth_one(cli, tmp_path, scenario: str, seed: int = 1):
    assert cli("synth", scenario, "--out", tmp_path, "--seed", seed).exit_code == 0
    return tmp_path / f"{scenario}-0.request.json", tmp_path / f"{scenario}-0.bundle.json"


def test_scenarios_lists_names_descriptions_and_topics(cli):
    result = cli("scenarios")
    assert result.exit_code == 0
    blocks = result.output.strip().split("\n")
    for scenario in SCENARIOS.values():
        at = blocks.index(scenario.name)
        assert blocks[at + 1].strip() == scenario.description
        expected = ", ".join(sorted(scenario.expected_topics)) or "no cards"
        assert blocks[at + 2].strip() == f"expected: {expected}"


def test_synth_writes_a_bundle_and_a_request_per_instance(cli, tmp_path):
    result = cli("synth", "si-fusion-met", "--out", tmp_path / "out", "--count", 3, "--seed", 4)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"si-fusion-met-{n}.{kind}.json" for n in range(3) for kind in ("bundle", "request"))
    bundle = json.loads((tmp_path / "out" / "si-fusion-met-2.bundle.json").read_text())
    request = json.loads((tmp_path / "out" / "si-fusion-met-2.request.json").read_text())
    assert bundle["type"] == "transaction" and request["hook"] == "order-sign"
    assert request["context"]["patientId"] == bundle["entry"][0]["resource"]["id"]


def test_synth_all_writes_every_scenario_with_a_progress_bar(cli, tmp_path):
    result = cli("synth", "all", "--out", tmp_path, "--count", 2)
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.iterdir())) == 4 * len(SCENARIOS)
    assert {p.name.rsplit("-", 1)[0] for p in tmp_path.iterdir()} == set(SCENARIOS)
    assert "Writing" in result.output
    assert "Writing" not in cli("synth", "not-spine", "--out", tmp_path / "one").output


def test_synth_is_deterministic_for_a_seed(cli, tmp_path):
    for folder, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert cli("synth", "seed-002", "--out", tmp_path / folder, "--count", 2, "--seed", seed).exit_code == 0
    contents = {f: [p.read_bytes() for p in sorted((tmp_path / f).iterdir())] for f in "abc"}
    assert contents["a"] == contents["b"]
    assert contents["a"] != contents["c"]


def test_synth_unknown_scenario_exits_2_naming_the_scenarios(cli, tmp_path):
    result = cli("synth", "fusion-everything", "--out", tmp_path)
    assert result.exit_code == 2
    assert all(word in result.output for word in ("fusion-everything", "fusion-criteria-met", "seed-002"))
    assert not list(tmp_path.iterdir())


def test_evaluate_request_file_prints_cards_readably(cli, tmp_path):
    request, _ = synth_one(cli, tmp_path, "fusion-pt-too-short")
    result = cli("evaluate", request)
    assert result.exit_code == 0, result.output
    lines = result.output.split("\n")
    assert lines[0].strip() == "Determinations"                     # the determination per order first
    assert any("TLIF" in line and "does not meet" in line and "✗" in line for line in lines[:8]), result.output
    assert "WARNING pt-documentation-missing" in result.output      # then the cards, markdown rendered
    assert "Longest recent PT course is 5 weeks; 6 are required" in result.output
    assert "**" not in result.output and max(len(line) for line in lines) <= 100


def test_evaluate_json_on_a_request_and_on_its_bundle(cli, tmp_path):
    request, bundle = synth_one(cli, tmp_path, "seed-000")
    from_request = json.loads(cli("evaluate", "--json", request).output)
    from_bundle = json.loads(cli("evaluate", "--json", bundle).output)
    assert topics_of(from_request) == topics_of(from_bundle) == SCENARIOS["seed-000"].expected_topics
    assert "systemActions" not in from_bundle     # a hospital's view: coverage is the payer's to say


def test_evaluate_not_spine_says_there_are_no_cards(cli, tmp_path):
    _, bundle = synth_one(cli, tmp_path, "not-spine")
    result = cli("evaluate", bundle)
    assert result.exit_code == 0 and result.output.startswith("No cards")


def test_profile_changes_the_2_5_mm_translation_outcome(cli, tmp_path):
    _, bundle = synth_one(cli, tmp_path, "fusion-instability-over-threshold")
    nass = json.loads(cli("evaluate", "--json", bundle).output)
    aetna = json.loads(cli("evaluate", "--json", "--profile", "aetna-cpb-0743", bundle).output)
    assert topics_of(nass) == {"criteria-met"}
    # The synthetic chart documents no nicotine status, scores or symptoms, which Aetna asks for (issue 13).
    assert topics_of(aetna) - ISSUE_13_TOPICS == {"level-unsupported"}
    level = next(c for c in aetna["cards"] if c["source"]["topic"]["code"] == "level-unsupported")
    assert "(aetna-cpb-0743)" in level["detail"]


BAD_FILES = {
    "not-json.json": ("{not json", "is not JSON"),
    "binary.json": (b"\xff\xfe\x00", "is not a UTF-8 text file"),
    "list.json": ("[1, 2]", "neither a CDS Hooks order-sign request"),
    "patient.json": ('{"resourceType": "Patient", "id": "p"}', "neither a CDS Hooks order-sign request"),
    "request.json": ('{"hook": "order-sign", "context": {}}', "hookInstance"),
    "no-drafts.json": ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
                       '{"resourceType": "Patient", "id": "p"}}]}', "no draft ServiceRequest"),
    "document.json": ('{"resourceType": "Bundle", "type": "document", "entry": []}', "Bundle.type is 'document'"),
    "entries.json": ('{"resourceType": "Bundle", "type": "collection", "entry": {}}', "Bundle.entry must be a list"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_evaluate_bad_file_exits_2_with_a_message(cli, tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = cli("evaluate", path)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert message in result.output and "Traceback" not in result.output


def test_evaluate_unknown_profile_or_missing_file_exits_2(cli, tmp_path):
    _, bundle = synth_one(cli, tmp_path, "not-spine")
    assert cli("evaluate", "--profile", "bcbs", bundle).exit_code == 2
    assert cli("evaluate", tmp_path / "absent.json").exit_code == 2
