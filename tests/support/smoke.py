"""Smoke checks of a shipped copy (an installed wheel, a container image) against the development
service: the same answers to discovery, the Questionnaire reads, the sandbox and an order-sign for
every synthetic scenario and the review letter of the seeds in every format, byte for byte apart from generated ids, timestamps and the server's own
address. Used by tests/test_installed_package.py and by docker/smoke.sh (`python -m tests.support.smoke
DEV_URL COPY_URL`)."""
from __future__ import annotations

import re
import sys

import requests

from cds_service.synthetic import SCENARIOS, synthesize

SERVICE_PATH = "/cds-services/spine-surgery-order-sign"
PAGES = ("/cds-services", "/fhir/Questionnaire", "/fhir/Questionnaire/spine-pt-course", "/sandbox",
         "/sandbox/sandbox.js", "/sandbox/api/profiles", "/sandbox/api/scenarios", "/readyz")

_IDS_AND_TIMES = (
    (re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), b"<uuid>"),
    (re.compile(rb"-[0-9a-f]{12}\b"), b"-<id>"),           # suggested resources' ids (pt-referral-8efe2eae24ed)
    (re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), b"<time>"),
)


def normalized(content: bytes, own_url: str = "", dev_url: str = "") -> bytes:
    """The answer apart from what differs on every call: generated ids, timestamps, the base URL."""
    if own_url:
        content = content.replace(own_url.encode(), dev_url.encode())
    for pattern, replacement in _IDS_AND_TIMES:
        content = pattern.sub(replacement, content)
    return content


def scenario_requests(seed: int = 7) -> list[tuple[str, dict]]:
    return [(f"{name}#{index}", instance.request) for name in SCENARIOS
            for index, instance in enumerate(synthesize(name, 1, seed))]


def compare(dev_url: str, copy_url: str, timeout: float = 60) -> list[str]:
    """Every difference between the two services, in words; [] when they answer alike."""
    differences = []
    with requests.Session() as http:
        for path in PAGES:
            here, there = http.get(dev_url + path, timeout=timeout), http.get(copy_url + path, timeout=timeout)
            if not there.status_code == here.status_code == 200:
                differences.append(f"GET {path}: {here.status_code} here, {there.status_code} there: {there.text[:300]}")
            elif normalized(there.content, copy_url, dev_url) != normalized(here.content):
                differences.append(f"GET {path}: different bodies")
        with_cards = 0
        for label, body in scenario_requests():
            here = http.post(dev_url + SERVICE_PATH, json=body, timeout=timeout)
            there = http.post(copy_url + SERVICE_PATH, json=body, timeout=timeout)
            if not there.status_code == here.status_code == 200:
                differences.append(f"order-sign {label}: {here.status_code} here, {there.status_code} there: "
                                   f"{there.text[:300]}")
            elif normalized(there.content, copy_url, dev_url) != normalized(here.content):
                differences.append(f"order-sign {label}: different answers")
            else:
                with_cards += bool(here.json()["cards"])
        # The review letter, in every format, for the three seed charts.
        for label, body in scenario_requests():
            if not label.startswith("seed-"):
                continue
            for accept in ("text/html", "text/markdown", "application/json"):
                here = http.post(dev_url + "/review", json=body, headers={"Accept": accept}, timeout=timeout)
                there = http.post(copy_url + "/review", json=body, headers={"Accept": accept}, timeout=timeout)
                if not there.status_code == here.status_code == 200:
                    differences.append(f"review {label} {accept}: {here.status_code} here, {there.status_code} there: "
                                       f"{there.text[:300]}")
                elif normalized(there.content, copy_url, dev_url) != normalized(here.content):
                    differences.append(f"review {label} {accept}: different letters")
        if with_cards < len(SCENARIOS) - 2:   # nearly every scenario gives cards: forms, rules and wording are read
            differences.append(f"only {with_cards} scenarios gave cards")
    return differences


def main(argv: list[str]) -> int:
    dev_url, copy_url = argv
    differences = compare(dev_url.rstrip("/"), copy_url.rstrip("/"))
    for line in differences:
        print(f"DIFFERENT {line}")
    print(f"smoke: {len(PAGES) + len(scenario_requests()) + 9} requests, {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
