"""Rule specifications loaded from criteria/rules/*.yaml, with payer profiles applied.

Loading fails loudly (RuleDataError) on an unknown key, a source key that sources.yaml
does not define, a topic outside the contract, or a profile overriding a threshold that
does not exist: a rule must never go missing silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from . import topics

RULE_KEYS = {"id", "title", "topic", "description", "applies_to", "parameters", "sources"}
PARAM_KEYS = {"value", "unit", "sources", "note", "comparison"}
COMPARISONS = {">": lambda x, t: x > t, ">=": lambda x, t: x >= t, "<": lambda x, t: x < t, "<=": lambda x, t: x <= t}
DEFAULT_PROFILE = "nass-2014"


class RuleDataError(ValueError):
    pass


@dataclass(frozen=True)
class Source:
    key: str
    policy: str
    edition: str
    url: str
    retrieved: str

    def cite(self) -> str:
        return f"{self.policy} ({self.edition})"


@dataclass(frozen=True)
class Parameter:
    name: str
    value: Any
    unit: str
    sources: tuple[Source, ...]
    note: str = ""
    profile: str | None = None   # the profile that set this value, None for the base rule
    comparison: str = ">="       # how a measured value is held against this threshold

    def cite(self) -> str:
        return "; ".join(s.cite() for s in self.sources)

    def met_by(self, measured: float) -> bool:
        return COMPARISONS[self.comparison](measured, self.value)

    def describe(self) -> str:
        return f"{self.comparison} {self.value} {self.unit}".strip()


@dataclass(frozen=True)
class RuleSpec:
    id: str
    title: str
    topic: str | None
    description: str
    applies_to: frozenset[str]
    parameters: Mapping[str, Parameter]
    sources: tuple[Source, ...]
    profile: str

    def __getitem__(self, name: str):
        return self.parameters[name].value

    def met(self, name: str, measured: float) -> bool:
        return self.parameters[name].met_by(measured)


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    description: str
    rules: Mapping[str, RuleSpec]


def _read_yaml(*parts: str):
    return yaml.safe_load(resources.files(__package__).joinpath(*parts).read_text("utf-8"))


@cache
def sources() -> Mapping[str, Source]:
    data = _read_yaml("rules", "sources.yaml")
    return MappingProxyType({key: Source(key, **value) for key, value in data.items()})


def _sources(keys, where: str) -> tuple[Source, ...]:
    known = sources()
    missing = [k for k in keys or () if k not in known]
    if missing or not keys:
        raise RuleDataError(f"{where}: cites {'no source' if not keys else 'unknown sources ' + ', '.join(missing)}")
    return tuple(known[k] for k in keys)


def _parameter(name: str, data: dict, where: str, profile: str | None = None) -> Parameter:
    if not isinstance(data, dict) or set(data) - PARAM_KEYS or "value" not in data:
        raise RuleDataError(f"{where}: parameter {name} must be a mapping of {sorted(PARAM_KEYS)} with a value")
    comparison = data.get("comparison", ">=")
    if comparison not in COMPARISONS:
        raise RuleDataError(f"{where}: parameter {name} has comparison {comparison!r}; use one of {sorted(COMPARISONS)}")
    return Parameter(name, data["value"], data.get("unit", ""), _sources(data.get("sources"), f"{where}.{name}"),
                     data.get("note", ""), profile, comparison)


def _rule(data: dict, file: str) -> RuleSpec:
    unknown = set(data) - RULE_KEYS
    if unknown or not RULE_KEYS - {"topic"} <= set(data):
        raise RuleDataError(f"{file}: unknown keys {sorted(unknown)} or missing keys {sorted(RULE_KEYS - set(data))}")
    if data["topic"] is not None and data["topic"] not in topics.ALL:
        raise RuleDataError(f"{file}: topic {data['topic']!r} is not a contract topic")
    params = {name: _parameter(name, value, file) for name, value in (data["parameters"] or {}).items()}
    return RuleSpec(data["id"], data["title"], data["topic"], " ".join(data["description"].split()),
                    frozenset(data["applies_to"] or ()), MappingProxyType(params),
                    _sources(data["sources"], file), profile=DEFAULT_PROFILE)


@cache
def base_rules() -> Mapping[str, RuleSpec]:
    rules = {}
    for entry in sorted(resources.files(__package__).joinpath("rules").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml") and entry.name != "sources.yaml":
            rule = _rule(yaml.safe_load(entry.read_text("utf-8")), entry.name)
            if rule.id != entry.name[:-5]:
                raise RuleDataError(f"{entry.name}: id {rule.id!r} must match the file name")
            rules[rule.id] = rule
    return MappingProxyType(rules)


@cache
def profile_ids() -> tuple[str, ...]:
    folder = resources.files(__package__).joinpath("profiles")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


@cache
def load_profile(profile_id: str = DEFAULT_PROFILE) -> Profile:
    if profile_id not in profile_ids():
        raise KeyError(profile_id)
    data = _read_yaml("profiles", f"{profile_id}.yaml")
    where = f"profiles/{profile_id}.yaml"
    if set(data) - {"id", "title", "description", "overrides"} or data.get("id") != profile_id:
        raise RuleDataError(f"{where}: unknown keys or id not matching the file name")
    rules = dict(base_rules())
    for rule_id, overrides in (data.get("overrides") or {}).items():
        if rule_id not in rules:
            raise RuleDataError(f"{where}: overrides unknown rule {rule_id!r}")
        rule = rules[rule_id]
        params = dict(rule.parameters)
        for name, value in overrides.items():
            if name not in params:
                raise RuleDataError(f"{where}: {rule_id} has no threshold {name!r}")
            base = params[name]
            params[name] = _parameter(name, {"unit": base.unit, "comparison": base.comparison, **value},
                                      f"{where}.{rule_id}", profile_id)
        rules[rule_id] = RuleSpec(rule.id, rule.title, rule.topic, rule.description, rule.applies_to,
                                  MappingProxyType(params), rule.sources, profile_id)
    for rule_id in rules:
        if rules[rule_id].profile != profile_id:
            r = rules[rule_id]
            rules[rule_id] = RuleSpec(r.id, r.title, r.topic, r.description, r.applies_to, r.parameters, r.sources, profile_id)
    return Profile(profile_id, data["title"], " ".join(data.get("description", "").split()), MappingProxyType(rules))
