"""Spine CPT codes in scope, with our own short labels and the facts the rules count on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

from .procedure_classes import JUDGED_AS, ProcedureClass  # the one enum of classes

Counts = Literal["interspace", "vertebral_segment", "procedure", "joint"]
Region = Literal["lumbar", "thoracic", "cervical", "sacroiliac", "any"]

# Every class in the catalogue triggers a review; graft and instrumentation are add-ons but
# their medical necessity follows the parent procedure, so they stay in scope.
SPINE_SURGERY_CLASSES: Final[frozenset[str]] = frozenset(c.value for c in ProcedureClass)


@dataclass(frozen=True)
class CptCode:
    code: str
    label: str
    procedure_class: str
    add_on: bool
    counts: str
    region: str
    # Vertebral segments the construct must span, for codes defined by a span; None means open-ended.
    segment_range: tuple[int, int | None] | None
    sources: tuple[str, ...]
    label_verified: bool
    note: str | None = None
    judged_as: str | None = None     # a narrower indication than the class's (procedure_classes.JUDGED_AS)


def normalize(code: str) -> str:
    """' +22632 ' -> '22632': the plus marks an add-on in print, it is not part of the code."""
    return "".join(code.split()).lstrip("+")


def _entry(raw: Mapping[str, Any]) -> CptCode:
    seg = raw.get("segment_range")
    if raw["procedure_class"] not in SPINE_SURGERY_CLASSES:
        raise ValueError(f"{raw['code']}: unknown procedure_class {raw['procedure_class']!r}")
    if raw.get("judged_as") not in (None, *JUDGED_AS):
        raise ValueError(f"{raw['code']}: unknown judged_as {raw['judged_as']!r}")
    return CptCode(
        code=raw["code"],
        label=raw["label"],
        procedure_class=raw["procedure_class"],
        add_on=bool(raw["add_on"]),
        counts=raw["counts"],
        region=raw["region"],
        segment_range=(int(seg[0]), None if seg[1] is None else int(seg[1])) if seg else None,
        sources=tuple(raw.get("sources", ())),
        label_verified=bool(raw.get("label_verified", False)),
        note=raw.get("note"),
        judged_as=raw.get("judged_as"),
    )


@cache
def catalogue() -> Mapping[str, CptCode]:
    text = resources.files("terminology").joinpath("data", "cpt_catalogue.json").read_text(encoding="utf-8")
    entries = [_entry(raw) for raw in json.loads(text)["codes"]]
    return {e.code: e for e in entries}


def lookup(code: str) -> CptCode | None:
    return catalogue().get(normalize(code))


def is_spine_surgery(code: str) -> bool:
    entry = lookup(code)
    return entry is not None and entry.procedure_class in SPINE_SURGERY_CLASSES


def judged_as(codes: Iterable[str], kind: str) -> bool:
    """Every in-scope code among `codes` is judged as `kind` (e.g. all discectomy codes)."""
    entries = [e for e in map(lookup, codes) if e is not None]
    return bool(entries) and all(e.judged_as == kind for e in entries)


def procedure_classes(codes: Iterable[str]) -> frozenset[str]:
    """Classes of the in-scope codes among `codes`; unknown codes are ignored."""
    return frozenset(e.procedure_class for e in map(lookup, codes) if e is not None)
