"""Every scenario's `ehr` and `payer` transaction Bundles loaded into the Medplum FHIR server (as in
test_interop_medplum.py) and read by Medplum's CDS client: with no prefetch, so our service fetches
the chart itself (Encounters, DocumentReferences, MedicationStatements and their Medications,
report bodies behind Binary urls, ExplanationOfBenefits), and with the prefetch Medplum resolves
from our discovery templates. Each gives the scenario's answer for that shape; the service's own
misses are xfail (tests/support/shapes.py)."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest

from cds_service.synthetic import SCENARIOS, synthesize
from tests.conftest import start_service
from tests.support.shapes import READER_MISSES, topics
from tests.test_interop_medplum import INTEROP, TOKEN, USER, load_chart, medplum_fhir, node_argv  # noqa: F401

pytestmark = pytest.mark.integration

SEED = 20260106
SHAPES = ("ehr", "payer")
MODES = ("service-fetch", "client-prefetch")


@dataclass(frozen=True)
class _Case:
    """What test_interop_medplum's load_chart needs: a name and a transaction bundle."""
    name: str
    bundle: dict
    patient_id: str
    orders: list
    expected: frozenset


def _case(name: str, shape: str) -> _Case:
    (instance,) = synthesize(name, 1, SEED, shape)
    context = instance.request["context"]
    return _Case(f"shape-{shape}-{name}", instance.bundle, context["patientId"],
                 [e["resource"] for e in context["draftOrders"]["entry"]], instance.expected_topics)


def _params():
    for name in SCENARIOS:
        for shape in SHAPES:
            why = READER_MISSES.get((name, shape))
            for mode in MODES:
                marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
                yield pytest.param(name, shape, mode, marks=marks, id=f"{name}-{shape}-{mode}")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """Our service as an EHR deploys it, and as a payer does (CDS_PAYER_DATA=on)."""
    ehr = start_service(tmp_path_factory.mktemp("ehr"))
    payer = start_service(tmp_path_factory.mktemp("payer"), CDS_PAYER_DATA="on")
    try:
        yield {"ehr": ehr, "payer": payer}
    finally:
        ehr.stop()
        payer.stop()


@pytest.mark.parametrize("name, shape, mode", list(_params()))
def test_shape_loaded_into_medplum_gives_its_answer(name, shape, mode, node_argv, services, medplum_fhir,
                                                    load_chart, tmp_path):
    case = _case(name, shape)
    result = load_chart(case)
    for sent_entry, entry in zip(case.bundle["entry"], result["entry"], strict=True):
        assert entry["response"]["status"] in ("200", "201"), entry["response"]
        assert {k: v for k, v in entry["resource"].items() if k != "meta"} == \
            {k: v for k, v in sent_entry["resource"].items() if k != "meta"}, "Medplum changed the resource"
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(case.orders))
    sent = tmp_path / "request.json"
    argv = [*node_argv, str(INTEROP / "cds-client.mjs"), "--cds", services[shape].url, "--fhir", medplum_fhir.base,
            "--token", TOKEN, "--patient", case.patient_id, "--user", USER, "--orders", str(orders),
            "--request-out", str(sent), *(["--no-prefetch"] if mode == "service-fetch" else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"cds-client failed ({proc.returncode}): {proc.stderr[-3000:]}"
    answer = json.loads(proc.stdout)
    assert topics(answer) == case.expected, [c["summary"] + "\n" + c.get("detail", "") for c in answer["cards"]]
    request = json.loads(sent.read_text())
    if mode == "client-prefetch":
        assert ("explanations-of-benefit" in request["prefetch"]) == (shape == "payer")
    else:
        assert "prefetch" not in request
