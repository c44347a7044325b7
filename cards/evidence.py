"""Short human names for orders and dated evidence lines, for cards and the letter."""
from __future__ import annotations

from . import wording

NAME_LIMIT = 48
LINE_LIMIT = 110


def short_name(order) -> str:
    name = order.label.strip()
    return name if len(name) <= NAME_LIMIT else name[: NAME_LIMIT - 1].rstrip(" ,;:") + "…"


def evidence_line(e) -> str:
    day = e.day.isoformat() if e.day else wording.detail_piece("undated")
    line = wording.detail_piece("evidence_line", day=day, description=" ".join(e.description.split()))
    return line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 1].rstrip() + "…"


def dated_first(evidence) -> list:
    unique = list(dict.fromkeys(evidence))
    return [e for e in unique if e.day] + [e for e in unique if not e.day]


def evidence_lines(evidence, limit: int) -> list[str]:
    return [evidence_line(e) for e in dated_first(evidence)[:limit]]
