"""What the shape tests share: the cases (scenario, shape), the answers' topics and determinations,
and the scenarios a shape answers wrongly because the service does not read something a real
EHR or payer chart carries (xfail, with what is missed)."""
from __future__ import annotations

import pytest

from cds_service.synthetic import SCENARIOS, SHAPES

# (scenario, shape) -> what the service's readers miss. Not bent away in the data: real charts carry it.
READER_MISSES = {
}


def cases():
    """pytest params (scenario, shape), the reader misses marked xfail (strict: a fix must say so)."""
    for name in SCENARIOS:
        for shape in SHAPES:
            why = READER_MISSES.get((name, shape))
            marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
            yield pytest.param(name, shape, marks=marks, id=f"{name}-{shape}")


def topics(answer: dict) -> frozenset[str]:
    return frozenset(card["source"]["topic"]["code"] for card in answer["cards"])


def determinations(answer: dict) -> dict[str, tuple]:
    """Order id -> the coded coverage-information answers (covered, pa-needed, doc-needed, ...)."""
    found = {}
    for action in answer.get("systemActions") or []:
        resource = action.get("resource") or {}
        codes = tuple(sorted((part["url"], part["valueCode"]) for ext in resource.get("extension") or []
                             for part in ext.get("extension") or [] if "valueCode" in part))
        found[resource.get("id")] = codes
    return found
