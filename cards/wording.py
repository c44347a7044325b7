"""Words for findings, from cards/text/wording.yaml (Jinja2 templates a clinician can edit).

Values are formatted here, once: dates as ISO days, numbers without trailing zeros, lists
joined with commas, snake_case terms translated, nested points rendered in place.
"""
from __future__ import annotations

import re
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jinja2 import StrictUndefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from criteria.finding import Point


@cache
def text() -> dict:
    return yaml.safe_load(resources.files(__package__).joinpath("text", "wording.yaml").read_text("utf-8"))


_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


_PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")


class _Substitution:
    """A template that only substitutes names ("{{ count }} of {{ needed }}"), rendered without Jinja:
    most wording is this simple and an answer renders dozens of them, each ~20x cheaper this way.
    Same output as Jinja: str() of each value, one trailing newline dropped, a missing name an error."""

    def __init__(self, source: str):
        self.parts = _PLACEHOLDER.split(source.removesuffix("\n"))

    def render(self, **values) -> str:
        parts = self.parts
        try:
            return "".join(part if i % 2 == 0 else str(values[part]) for i, part in enumerate(parts))
        except KeyError as missing:
            raise UndefinedError(f"{missing.args[0]!r} is undefined") from None


@cache
def _template(source: str):
    if "{%" not in source and "{#" not in source and "{{" not in _PLACEHOLDER.sub("", source):
        return _Substitution(source)
    return _env.from_string(source)


def term(value: str) -> str:
    return text()["terms"].get(value, value)


def fmt(value: Any) -> Any:
    if isinstance(value, Point):
        return say(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return term(value)
    if isinstance(value, (tuple, list, frozenset, set)):
        items = [fmt(v) for v in value]
        return ("; " if any(isinstance(v, Point) for v in value) else ", ").join(str(i) for i in items)
    return value


def render(source: str, **values) -> str:
    return _template(source).render(**{k: fmt(v) for k, v in values.items()})


def say(p: Point) -> str:
    try:
        source = text()["points"][p.code]
    except KeyError:
        raise KeyError(f"cards/text/wording.yaml has no wording for point {p.code!r}") from None
    return render(source, **p.values)


def topic(code: str) -> dict:
    return text()["topics"][code]


def determination(value: str) -> str:
    return text()["determinations"][value]


def detail_piece(name: str, **values) -> str:
    return render(text()["detail"][name], **values)


def check() -> None:
    """Fail at start-up on a template that does not parse."""
    for section in ("points", "detail"):
        for source in text()[section].values():
            _template(source)
    for entry in text()["topics"].values():
        _template(entry["summary"])
