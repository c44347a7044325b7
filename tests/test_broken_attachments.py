"""Attachments that cannot be read reach the answer as a data-unavailable card naming them, over
HTTP, with a 200; never a 500, never silently dropped. The chart is the coded baseline of
tests/fixtures/real_charts (criteria met) plus one broken note or report body."""
from __future__ import annotations

import base64
import copy
import json

import pytest

from cds_service import discovery
from tests.fixtures.real_charts.build_charts import LISTHESIS, pdf
from tests.support.real_charts import load_charts, order_sign_request
from tests.support.servers import ServerProcess, mini_fhir_command

SERVICE = discovery.service("spine-surgery-order-sign")
BASELINE = next(c for c in load_charts() if c["name"] == "coded-baseline")
SUBJECT = {"reference": f"Patient/{BASELINE['patient_id']}"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def note(attachment: dict, note_id: str = "broken-note") -> dict:
    return {"resourceType": "DocumentReference", "id": note_id, "status": "current", "subject": SUBJECT,
            "type": {"text": "Outside records"}, "date": "2025-05-30T12:00:00Z", "content": [{"attachment": attachment}]}


def chart_with(*extra: dict, without_conclusion: bool = False) -> dict:
    chart = copy.deepcopy(BASELINE)
    if without_conclusion:
        for resource in chart["resources"]:
            resource.pop("conclusion", None)
    chart["resources"] += list(extra)
    return chart


def topics(answer: dict) -> list[str]:
    return sorted(c["source"]["topic"]["code"] for c in answer["cards"])


def unavailable(answer: dict) -> str:
    cards = [c for c in answer["cards"] if c["source"]["topic"]["code"] == "data-unavailable"]
    assert len(cards) == 1, topics(answer)
    return cards[0]["summary"] + "\n" + cards[0]["detail"]


BROKEN = [
    ("bad-base64", {"contentType": "text/plain", "data": "VGhpcyBpcyBub3Q@@@###", "title": "Outside MRI"},
     "not valid base64"),
    ("binary-labelled-text", {"contentType": "text/plain; charset=utf-8", "data": b64(bytes(range(256)) * 8),
                              "title": "Outside MRI"}, "not text"),
    ("image-only-pdf", {"contentType": "application/pdf", "data": b64(pdf([])), "title": "Scanned referral"},
     "no text layer"),
    ("scanned-image", {"contentType": "image/tiff", "data": b64(b"II*\x00" + b"\x00" * 64), "title": "Fax"},
     "image"),
    ("unknown-type", {"contentType": "application/msword", "data": b64(b"\xd0\xcf\x11\xe0 word"), "title": "Letter"},
     "application/msword"),
    ("over-the-document-cap", {"contentType": "text/plain", "data": b64(b"lumbar spine " * 500_000), "title": "Chart dump"},
     "larger than 5 MB"),
]


@pytest.mark.parametrize("name, attachment, words", BROKEN, ids=[b[0] for b in BROKEN])
def test_unreadable_attachment_is_named_in_a_200_answer(order_sign, name, attachment, words):
    answer = order_sign(order_sign_request(chart_with(note(attachment)), SERVICE))
    text = unavailable(answer)
    assert "DocumentReference/broken-note" in text and words in text, text
    assert attachment["title"] in text
    # What could be read still counts: PT, care and the level are met; nothing says "criteria met".
    assert topics(answer) == ["data-unavailable"]


def test_a_wrong_charset_label_does_not_stop_the_note_being_read(order_sign):
    """Labelled UTF-8 but written in windows-1252, or labelled UTF-16 on 8-bit bytes: the bytes decide."""
    body = f"MRI L-spine \u2013 outside films reviewed. {LISTHESIS} Caf\u00e9 noted.".encode("cp1252")
    for label in ("utf-8", "utf-16"):
        attachment = {"contentType": f"text/plain; charset={label}", "data": b64(body)}
        answer = order_sign(order_sign_request(chart_with(note(attachment), without_conclusion=True), SERVICE))
        assert topics(answer) == ["criteria-met"], (label, [c["summary"] for c in answer["cards"]])


def test_html_with_scripts_is_read_without_them(order_sign):
    """A listhesis written only inside <script>, <style> or <title> is not read; the visible text is."""
    hidden = (f"<html><head><title>{LISTHESIS}</title><style>/* {LISTHESIS} */</style></head>"
              f"<body onload=\"alert(1)\"><script>document.write('{LISTHESIS}')</script>"
              "<p>MRI lumbar spine: mild disc bulge at L4-5.</p></body></html>")
    answer = order_sign(order_sign_request(chart_with(note({"contentType": "text/html", "data": b64(hidden.encode())}),
                                                      without_conclusion=True), SERVICE))
    assert topics(answer) == ["level-unsupported"]
    visible = hidden.replace("<script>", "<p>").replace("</script>", "</p>")
    answer = order_sign(order_sign_request(chart_with(note({"contentType": "text/html", "data": b64(visible.encode())}),
                                                      without_conclusion=True), SERVICE))
    assert topics(answer) == ["criteria-met"]   # the same words outside <script> are read


@pytest.fixture(scope="module")
def fifty_mb_server(tmp_path_factory):
    """A FHIR server holding the chart and a 50 MB Binary behind a report's presentedForm.url."""
    chart = chart_with({"resourceType": "Binary", "id": "huge", "contentType": "text/plain",
                        "data": b64(b"x" * 37_500_000)},
                       {"resourceType": "DiagnosticReport", "id": "huge-report", "status": "final", "subject": SUBJECT,
                        "code": {"text": "CT myelogram"}, "effectiveDateTime": "2025-05-01",
                        "presentedForm": [{"contentType": "text/plain", "url": "Binary/huge", "title": "CT myelogram"}]})
    path = tmp_path_factory.mktemp("huge") / "chart.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in chart["resources"]]}))
    with ServerProcess.start(mini_fhir_command(path, token="t-50mb")) as server:
        yield server, chart


def test_a_50_mb_report_body_is_named_not_read(order_sign, fifty_mb_server):
    server, chart = fifty_mb_server
    request = order_sign_request(chart, SERVICE, prefetch=False, fhirServer=server.url,
                                 fhirAuthorization={"access_token": "t-50mb", "token_type": "Bearer",
                                                    "expires_in": 60, "scope": "patient/*.read", "subject": "x"})
    answer = order_sign(request)
    text = unavailable(answer)
    assert "DiagnosticReport/huge-report" in text and "CT myelogram" in text and "larger than" in text, text
    assert "t-50mb" not in json.dumps(answer)
