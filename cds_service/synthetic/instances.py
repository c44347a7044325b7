"""synthesize(): instances of a scenario as a transaction Bundle plus a matching request."""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from .builders import make_request
from .bundles import transaction
from .scenarios import SCENARIOS


class UnknownScenario(KeyError):
    def __str__(self) -> str:
        return f"unknown scenario {self.args[0]!r}; known: {', '.join(SCENARIOS)}"


@dataclass(frozen=True)
class Synthetic:
    scenario: str
    index: int
    bundle: dict          # FHIR R4 transaction: Patient, Coverage, chart, draft orders
    request: dict         # CDS Hooks order-sign request with every prefetch key filled
    expected_topics: frozenset[str]


def synthesize(scenario_name: str, count: int, seed: int) -> list[Synthetic]:
    scenario = SCENARIOS.get(scenario_name)
    if scenario is None:
        raise UnknownScenario(scenario_name)
    out = []
    for index in range(count):
        # One generator per instance: instance n is the same whatever count is asked for.
        rng = random.Random(f"{seed}:{scenario_name}:{index}")
        orders, chart, _ = scenario.build(rng, index)
        patient_id = next(r["id"] for r in chart if r["resourceType"] == "Patient")
        request = make_request(orders, chart, patient_id,
                               hookInstance=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        out.append(Synthetic(scenario_name, index, transaction(chart + orders), request, scenario.expected_topics))
    return out
