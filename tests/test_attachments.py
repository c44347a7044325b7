"""Text out of attachments (fhir_mappings/attachments.py), the chart cap, decoding once per chart,
and where the service fetches linked data from (cds_service/linked.py, prefetch category split)."""
from __future__ import annotations

import base64
from datetime import date

import pytest

from cds_service.linked import follow_links
from cds_service.prefetch import PrefetchPolicy, hydrate, split_by_category
from fhir_mappings import attachments
from fhir_mappings.attachments import CannotRead, html_text, read_attachment
from fhir_mappings.build import build_facts
from fhir_mappings.chart import Chart
from fhir_mappings.resources import narrative_texts
from tests.fixtures.real_charts.build_charts import pdf


def b64(text: str | bytes, encoding: str = "utf-8") -> str:
    return base64.b64encode(text if isinstance(text, bytes) else text.encode(encoding)).decode()


def report(*forms: dict, **fields) -> dict:
    return {"resourceType": "DiagnosticReport", "id": fields.pop("id", "dr1"), "status": "final",
            "subject": {"reference": "Patient/p1"}, "code": {"text": "MRI L SPINE"}, "presentedForm": list(forms), **fields}


def test_html_table_rows_list_items_and_headings_become_lines():
    markup = ("<html><body><h2>FINDINGS</h2><table><tr><td>L4-5</td><td>Moderate stenosis.</td></tr>"
              "<tr><td>L5-S1</td><td>No stenosis.</td></tr></table><h2>IMPRESSION</h2>"
              "<ol><li>Grade 1 anterolisthesis L4-5.</li><li>Facet arthropathy.</li></ol>"
              "<p>Signed &amp; dated&nbsp;5/10/2025</p></body></html>")
    assert html_text(markup).splitlines() == [
        "FINDINGS", "L4-5 Moderate stenosis.", "L5-S1 No stenosis.", "IMPRESSION", "Grade 1 anterolisthesis L4-5.",
        "Facet arthropathy.", "Signed & dated 5/10/2025"]


def test_xhtml_with_namespaces_reads_like_html():
    markup = '<?xml version="1.0"?><div xmlns="http://www.w3.org/1999/xhtml"><p>One.</p><ul><li>Two.</li></ul></div>'
    assert read_attachment({"contentType": "application/xhtml+xml", "data": b64(markup)}) == "One.\nTwo."


def test_pdf_text_layer_is_read_and_an_image_only_pdf_is_not():
    assert read_attachment({"contentType": "application/pdf", "data": b64(pdf(["IMPRESSION:", "Severe stenosis L3-4."]))}) \
        == "IMPRESSION:\nSevere stenosis L3-4."
    with pytest.raises(CannotRead, match="no text layer"):
        read_attachment({"contentType": "application/pdf", "data": b64(pdf([]))})
    with pytest.raises(CannotRead, match="not a PDF"):
        read_attachment({"contentType": "application/pdf", "data": b64(b"%PDF-1.4 garbage")})


@pytest.mark.parametrize("content_type, raw", [
    ("text/plain; charset=windows-1252", "Caf\u00e9 \u2013 L4-5".encode("cp1252")),
    ("text/plain", "Caf\u00e9 \u2013 L4-5".encode("utf-8")),
    ("text/plain", "\ufeffCaf\u00e9 \u2013 L4-5".encode("utf-8")),
    ("text/plain; charset=utf-16", "Caf\u00e9 \u2013 L4-5".encode("utf-16")),
    ("text/plain; charset=utf-8", "Caf\u00e9 \u2013 L4-5".encode("cp1252")),   # a wrong label
])
def test_charset_from_the_attachment_or_detected(content_type, raw):
    assert read_attachment({"contentType": content_type, "data": b64(raw)}) == "Caf\u00e9 \u2013 L4-5"


def test_the_same_note_in_two_renditions_is_read_once():
    resource = {"resourceType": "DocumentReference", "id": "n1", "status": "current", "content": [
        {"attachment": {"contentType": "application/pdf", "data": b64(pdf(["PT discharge."]))}},
        {"attachment": {"contentType": "text/plain", "data": b64("PT discharge.")}}]}
    assert [t.source for t in attachments.attachment_texts(resource)] == ["content[1].attachment"]


def test_a_title_is_never_read():
    titled = report({"contentType": "text/plain", "data": b64("Normal alignment.")},
                    code={"text": "XR SCOLIOSIS SURVEY"})
    facts = build_facts(Chart.build("p1", [], [titled], date(2025, 6, 20)))
    assert not [f for f in facts.level_facts if f.kind == "deformity"]
    note = {"resourceType": "DocumentReference", "id": "n1", "status": "current", "description": "Scoliosis survey",
            "type": {"text": "Scoliosis"}, "content": [{"attachment": {"contentType": "text/plain", "data": b64("Normal.")}}]}
    assert narrative_texts(note) == ["Normal."]


def test_each_attachment_is_decoded_once_per_chart(monkeypatch):
    calls = []
    real = attachments.read_attachment
    monkeypatch.setattr(attachments, "read_attachment", lambda a, *rest: calls.append(1) or real(a, *rest))
    dr = report({"contentType": "text/plain", "data": b64("Severe stenosis at L4-5. PT for 6 weeks.")})
    build_facts(Chart.build("p1", [], [dr], date(2025, 6, 20)))
    assert len(calls) == 1
    assert attachments._CHART.get() is None   # emptied when the chart is done


def test_the_chart_cap_names_what_was_left_unread(monkeypatch):
    monkeypatch.setattr(attachments, "MAX_CHART_CHARS", 30)
    forms = [report({"contentType": "text/plain", "data": b64(f"Note {i}: moderate stenosis at L4-5.")}, id=f"dr{i}")
             for i in range(3)]
    facts = build_facts(Chart.build("p1", [], forms, date(2025, 6, 20)))
    unread = [u for u in facts.unavailable if "the most read per chart" in u]
    assert len(unread) == 2 and "DiagnosticReport/dr1" in unread[0]


def test_observation_search_by_category_is_one_search_per_category():
    url = "https://ehr/fhir/Observation?patient=p1&category=laboratory,vital-signs,exam"
    assert split_by_category(url) == ["https://ehr/fhir/Observation?patient=p1&category=laboratory",
                                      "https://ehr/fhir/Observation?patient=p1&category=vital-signs",
                                      "https://ehr/fhir/Observation?patient=p1&category=exam"]
    assert split_by_category("https://ehr/fhir/Condition?patient=p1&category=a,b") == \
        ["https://ehr/fhir/Condition?patient=p1&category=a,b"]


def test_supplementary_keys_absent_without_a_server_are_skipped_not_failed():
    policies = (PrefetchPolicy("patient", "Patient/{{context.patientId}}"),
                PrefetchPolicy("notes", "DocumentReference?patient={{context.patientId}}", False, True))
    hydrated = hydrate({"patient": {"resourceType": "Patient", "id": "p1"}}, {"patientId": "p1"}, policies,
                       fhir_server=None, access_token=None)
    assert hydrated.failures == {} and "notes" in hydrated.skipped


class _NoNetwork:
    max_workers = 2

    def read(self, url, access_token=None):
        raise AssertionError(f"nothing may be fetched here, yet {url} was")


@pytest.mark.parametrize("url, why", [
    ("https://elsewhere.example/fhir/Binary/b1", "not on the request's FHIR server"),
    ("https://ehr.example/fhir-other/Binary/b1", "not on the request's FHIR server"),
    ("file:///etc/passwd", "urls are not read"),
])
def test_attachment_urls_off_the_fhir_server_are_never_fetched(url, why):
    dr = report({"contentType": "text/html", "url": url, "title": "MRI"})
    linked = follow_links([dr], fhir_server="https://ehr.example/fhir", access_token="tok", client=_NoNetwork())
    (line,) = linked.unavailable
    assert "presentedForm[0]" in line and "DiagnosticReport/dr1" in line and why in line


def test_a_binary_on_the_same_server_is_folded_into_a_copy():
    class Server(_NoNetwork):
        def read(self, url, access_token=None, base=None):
            assert base == "https://ehr.example/fhir"   # reads stay inside the FHIR base
            assert url == "https://ehr.example/fhir/Binary/b1" and access_token == "tok"
            return {"resourceType": "Binary", "contentType": "text/plain", "data": b64("Severe stenosis L2-3.")}
    dr = report({"url": "Binary/b1"})
    linked = follow_links([dr], fhir_server="https://ehr.example/fhir/", access_token="tok", client=Server())
    assert linked.unavailable == () and "data" not in dr["presentedForm"][0]
    assert linked.resources[0]["presentedForm"][0] == {"url": "Binary/b1", "data": b64("Severe stenosis L2-3."),
                                                       "contentType": "text/plain"}


def test_care_read_from_a_note_keeps_its_quote_and_where_it_was_read():
    note = {"resourceType": "DocumentReference", "id": "n1", "status": "current", "date": "2025-05-30",
            "content": [{"attachment": {"contentType": "text/plain",
                                        "data": b64("HPI: back pain.\nHe has attended physical therapy twice weekly.")}}]}
    facts = build_facts(Chart.build("p1", [], [note], date(2025, 6, 20)))
    (episode,) = [c for c in facts.care if c.kind == "physical_therapy"]
    assert episode.evidence.reference == "DocumentReference/n1"
    assert episode.evidence.source == "content[0].attachment" and "physical therapy" in episode.evidence.quote
