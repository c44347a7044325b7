"""The codes and names a coded imaging-finding Observation uses for where (an interspace), how much
(a severity) and whether (absent), from terminology/data/imaging_observations.yaml."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from terminology.levels import Interspace
from terminology.phrases import compile_phrases
from terminology.systems import UnknownCodeSystem, resolve_system

__all__ = ["ImagingCodes", "codes"]


def _system(name: str) -> str:
    try:
        return resolve_system(name)
    except UnknownCodeSystem:
        return name


def _keyed(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(_system(row["system"]), str(row["code"])): row for row in rows}


def _whole(words: list[str]) -> re.Pattern:
    """The text is one of the phrases, nothing more (the one phrase compiler's word rules)."""
    pattern = compile_phrases(words)
    return re.compile(rf"\s*(?:{pattern.pattern})\s*[.!]?\s*", pattern.flags)


@dataclass(frozen=True)
class ImagingCodes:
    interspaces: dict[tuple[str, str], Interspace]
    severities: dict[tuple[str, str], str]
    absent: frozenset[tuple[str, str]]
    absent_text: re.Pattern
    location_name: re.Pattern
    grade_name: re.Pattern
    translation_name: re.Pattern

    def interspace(self, system: str | None, code: str) -> Interspace | None:
        return self.interspaces.get((system or "", code))

    def severity(self, system: str | None, code: str) -> str | None:
        return self.severities.get((system or "", code))

    def says_absent(self, system: str | None, code: str) -> bool:
        return (system or "", code) in self.absent


@cache
def codes() -> ImagingCodes:
    path = resources.files("terminology").joinpath("data", "imaging_observations.yaml")
    data = yaml.safe_load(path.read_text("utf-8"))
    for key in ("absent_words", "location_names", "grade_names", "translation_names"):
        if not all(isinstance(word, str) for word in data[key]):
            raise ValueError(f"imaging_observations.yaml {key}: every entry must be a string (quote it)")
    return ImagingCodes(
        interspaces={key: Interspace.parse(row["level"]) for key, row in _keyed(data["interspaces"]).items()},
        severities={key: row["word"] for key, row in _keyed(data["severities"]).items()},
        absent=frozenset(_keyed(data["absent_codes"])),
        absent_text=_whole(data["absent_words"]),
        location_name=compile_phrases(data["location_names"]),
        grade_name=compile_phrases(data["grade_names"]),
        translation_name=compile_phrases(data["translation_names"]),
    )
