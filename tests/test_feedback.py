"""Feedback is validated, stored once in the database, and survives bad posts (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from cds_service.persistence import Store
from tests.conftest import SERVICE_PATH

URL = SERVICE_PATH + "/feedback"


def item(card="card-1", outcome="accepted", ts="2025-06-20T10:05:31Z", **extra):
    base = {"card": card, "outcome": outcome, "outcomeTimestamp": ts}
    if outcome == "accepted":
        base["acceptedSuggestions"] = [{"id": "sugg-1"}]
    return {**base, **extra}


def test_feedback_stored_once(tmp_path, http, database_url):
    from tests.conftest import start_service
    with start_service(tmp_path, CDS_DATABASE_URL=database_url) as service:
        first = http.post(service.url + URL, json={"feedback": [item(), item("card-2", "overridden",
                          overrideReason={"reason": {"code": "clinical-judgment", "system": "x"}, "userComment": "ok"})]})
        again = http.post(service.url + URL, json={"feedback": [item()]})
        bad = http.post(service.url + URL, json={"feedback": [{"card": "card-3", "outcome": "maybe"}]})
        missing_accepted = http.post(service.url + URL, json={"feedback": [
            {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2025-06-20T10:05:31Z"}]})
        not_json = http.post(service.url + URL, data=b"{", headers={"Content-Type": "application/json"})
        unknown = http.post(service.url + "/cds-services/nope/feedback", json={"feedback": [item()]})
    assert first.status_code == 200 and first.json() == {"stored": 2, "duplicates": 0}
    assert again.status_code == 200 and again.json() == {"stored": 0, "duplicates": 1}
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"][0].startswith("$.feedback[0]")
    assert missing_accepted.status_code == 400 and "acceptedSuggestions" in missing_accepted.json()["issue"][0]["diagnostics"]
    assert not_json.status_code == 400 and unknown.status_code == 404
    store = Store(database_url)
    rows = store.feedback_rows()
    store.dispose()
    assert not (tmp_path / "var" / "spine-cds.sqlite3").exists()  # CDS_DATABASE_URL wins over the default
    assert [(r["card_uuid"], r["outcome"]) for r in rows] == [("card-1", "accepted"), ("card-2", "overridden")]
    assert '"clinical-judgment"' in rows[1]["override_reason"]


def test_store_dedupes_within_one_post(database_url):
    store = Store(database_url)
    assert store.add_feedback("svc", [item(), item()]) == (1, 1)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from feedback")).scalar() == 1
    store.dispose()



def test_a_second_override_with_another_reason_is_stored(database_url):
    store = Store(database_url)
    first = item("card-9", "overridden", overrideReason={"reason": {"code": "clinical-judgment", "system": "x"}})
    other = item("card-9", "overridden", overrideReason={"reason": {"code": "documented-elsewhere", "system": "x"}})
    assert store.add_feedback("svc", [first, other, first]) == (2, 1)
    store.dispose()


@pytest.mark.parametrize("bad, words", [
    (item("c", "overridden", overrideReason={}), "overrideReason"),                              # cds-fb-3: says nothing
    (item("c", "overridden", overrideReason={"reason": {"code": "clinical-judgment"}}), "system"),
    (item("c", "accepted", overrideReason={"userComment": "x"}), "overrideReason"),
    (item("c", "overridden", acceptedSuggestions=[{"id": "s"}]), "acceptedSuggestions"),
])
def test_feedback_rules_are_enforced(service, http, bad, words):
    response = http.post(service.url + URL, json={"feedback": [bad]}, timeout=10)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"] + " ".join(outcome["issue"][0].get("expression", [])), outcome
