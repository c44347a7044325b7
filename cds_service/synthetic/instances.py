"""synthesize(): instances of a scenario as a transaction Bundle plus a matching request."""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from .bundles import transaction
from .scenarios import SCENARIOS
from .shapes import SHAPES, UnknownShape, render, request as shaped_request


class UnknownScenario(KeyError):
    def __str__(self) -> str:
        return f"unknown scenario {self.args[0]!r}; known: {', '.join(SCENARIOS)}"


@dataclass(frozen=True)
class Synthetic:
    scenario: str
    index: int
    bundle: dict          # FHIR R4 transaction: Patient, Coverage, chart, draft orders
    request: dict         # CDS Hooks order-sign request with every prefetch key filled
    expected_topics: frozenset[str]   # what the service answers to this shape of the scenario
    shape: str = "coded"


def synthesize(scenario_name: str, count: int, seed: int, shape: str = "coded") -> list[Synthetic]:
    """count instances of the scenario rendered in shape (shapes.SHAPES). Instance n of a seed is
    the same clinical chart in every shape: the shape changes where each fact is kept, not the fact."""
    scenario = SCENARIOS.get(scenario_name)
    if scenario is None:
        raise UnknownScenario(scenario_name)
    if shape not in SHAPES:
        raise UnknownShape(shape)
    out = []
    for index in range(count):
        # One generator per instance: instance n is the same whatever count is asked for.
        rng = random.Random(f"{seed}:{scenario_name}:{index}")
        orders, chart, _ = scenario.build(rng, index)
        hook_instance = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        orders, chart = render(shape, orders, chart)
        patient_id = next(r["id"] for r in chart if r["resourceType"] == "Patient")
        request = shaped_request(shape, orders, chart, patient_id, hookInstance=hook_instance)
        out.append(Synthetic(scenario_name, index, transaction(chart + orders), request,
                             scenario.expected_in(shape), shape))
    return out
