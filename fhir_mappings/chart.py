"""The chart: what the request and the prefetch (or the FHIR server) gave us, as plain dicts."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Chart:
    patient_id: str
    draft_orders: tuple[dict, ...]          # every resource in context.draftOrders
    resources: tuple[dict, ...]             # the patient's record, deduplicated by type/id
    today: date                             # used only where an order has no authoredOn
    unavailable: tuple[str, ...] = field(default=())  # what could not be fetched, in words

    @classmethod
    def build(cls, patient_id: str, draft_orders, resources, today: date, unavailable=()) -> "Chart":
        seen, unique = set(), []
        for resource in resources:
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                continue  # not a FHIR resource (broken or hostile JSON): nothing the mappers can read
            key = (resource["resourceType"], resource.get("id"))
            if isinstance(key[1], str):
                if key in seen:
                    continue
                seen.add(key)
            unique.append(resource)
        return cls(patient_id, tuple(draft_orders), tuple(unique), today, tuple(unavailable))
