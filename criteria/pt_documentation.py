"""Formal physical therapy: weeks of weekly supervised visits, ended within the recency window."""
from __future__ import annotations

from datetime import date, timedelta

from fhir_mappings.dates import add_months
from fhir_mappings.facts import CareEpisode, Facts

from .finding import MET, NOT_MET, WAIVED, Finding
from .spec import Profile
from .waivers import waiver_lines, waiving_flags


def _courses(visits: list[CareEpisode], max_gap: int) -> list[list[CareEpisode]]:
    """Split dated PT records into courses: a gap longer than max_gap days starts a new course."""
    courses: list[list[CareEpisode]] = []
    for visit in sorted(visits, key=lambda v: v.start):
        if courses and (visit.start - (courses[-1][-1].end or courses[-1][-1].start)).days <= max_gap:
            courses[-1].append(visit)
        else:
            courses.append([visit])
    return courses


def course_weeks(course: list[CareEpisode]) -> int:
    """Calendar weeks touched: weekly visits on days 0, 7, ..., 35 are 6 weeks."""
    first = course[0].start
    last = max(v.end or v.start for v in course)
    return (last - first).days // 7 + 1


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["pt_documentation"]
    orders = tuple(o for o in facts.spine_orders if o.classes & rule.applies_to)
    if not orders:
        return []
    as_of = facts.order_date()
    pt = [c for c in facts.care if c.kind == "physical_therapy"]
    dated = [c for c in pt if c.start and c.start <= as_of]
    undated = [c for c in pt if not c.start]
    flags = waiving_flags(facts, profile.rules["red_flags"])
    window_start = add_months(as_of, -rule["recency_months"])

    courses = _courses(dated, rule["max_gap_days"])
    best = max(courses, key=course_weeks, default=None)
    recent = [c for c in courses if max(v.end or v.start for v in c) >= window_start]
    best_recent = max(recent, key=course_weeks, default=None)

    counted = [f"Durations measured to {as_of.isoformat()} (order authoredOn)"]
    for course in courses:
        end = max(v.end or v.start for v in course)
        counted.append(f"PT course {course[0].start.isoformat()} to {end.isoformat()}: "
                       f"{len(course)} record(s), {course_weeks(course)} week(s)")
    if undated:
        counted.append(f"{len(undated)} mention(s) of PT without dates (not counted)")
    evidence = tuple(v.evidence for v in sorted(dated, key=lambda v: v.start)) + tuple(v.evidence for v in undated)
    needed = rule["min_weeks"]
    ok = best_recent is not None and course_weeks(best_recent) >= needed
    thresholds = ("min_weeks", "max_gap_days", "recency_months")
    if ok:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), thresholds)]
    missing = []
    if not dated and undated:
        missing.append("PT is mentioned but no dated, supervised PT visits are documented")
    elif not dated:
        missing.append("no physical therapy is documented")
    elif best_recent is None:
        missing.append(f"the last PT course ended before {window_start.isoformat()} ({rule['recency_months']} months before the order)")
    else:
        missing.append(f"the longest recent PT course with a visit every {rule['max_gap_days']} days is "
                       f"{course_weeks(best_recent)} week(s); {needed} are required")
    if flags:
        return [Finding(rule, WAIVED, orders, evidence + tuple(f.evidence for f in flags),
                        tuple(counted) + waiver_lines(flags), tuple(missing), thresholds)]
    return [Finding(rule, NOT_MET, orders, evidence, tuple(counted), tuple(missing), thresholds,
                    data={"weeks_needed": needed, "best_weeks": course_weeks(best) if best else 0})]
