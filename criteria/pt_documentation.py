"""Formal physical therapy: visits over a course, about one a week, ended within the recency window;
a gap up to max_gap_days (a missed week) does not end the course."""
from __future__ import annotations


from fhir_mappings.dates import add_months
from fhir_mappings.facts import CareEpisode, Facts

from .finding import MET, NEEDS_DOCUMENTATION, NOT_MET, WAIVED, Finding, point
from .spec import Profile
from .waivers import assess_flags, by_waiver, waiver_points


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


def visits(course: list[CareEpisode]) -> float:
    """Visits in a course; a record of a whole course (its period) stands for a visit a week."""
    return sum(((v.end - v.start).days // 7 + 1) if v.period and v.end else 1 for v in course)


def evaluate(facts: Facts, profile: Profile) -> list[Finding]:
    rule = profile.rules["pt_documentation"]
    orders = tuple(o for o in facts.spine_orders if o.classes & rule.applies_to)
    if not orders:
        return []
    return by_waiver(facts, profile, orders, lambda group: _evaluate(facts, profile, group))


def _evaluate(facts: Facts, profile: Profile, orders) -> list[Finding]:
    rule = profile.rules["pt_documentation"]
    as_of = facts.order_date()
    pt = [c for c in facts.care if c.kind == "physical_therapy"]
    dated = [c for c in pt if c.start and c.start <= as_of]
    undated = [c for c in pt if not c.start]
    flags, refused = assess_flags(facts, profile.rules["red_flags"], frozenset().union(*(o.classes for o in orders)))
    window_start = add_months(as_of, -rule["recency_months"])

    courses = _courses(dated, rule["max_gap_days"])
    best = max(courses, key=course_weeks, default=None)
    recent = [c for c in courses if max(v.end or v.start for v in c) >= window_start]
    dense = [c for c in recent if visits(c) >= course_weeks(c) * rule["min_visits_per_week"]]
    best_recent = max(dense, key=course_weeks, default=None)
    sparse = max((c for c in recent if c not in dense), key=course_weeks, default=None)

    counted = [point("measured-to", day=as_of)]
    for course in courses:
        end = max(v.end or v.start for v in course)
        counted.append(point("pt-course", *(v.evidence for v in course[:1]), start=course[0].start, end=end,
                             records=len(course), weeks=course_weeks(course)))
    if undated:
        counted.append(point("pt-undated", *(v.evidence for v in undated[:1]), count=len(undated)))
    evidence = tuple(v.evidence for v in sorted(dated, key=lambda v: v.start)) + tuple(v.evidence for v in undated)
    needed = rule["min_weeks"]
    ok = best_recent is not None and course_weeks(best_recent) >= needed
    thresholds = ("min_weeks", "max_gap_days", "min_visits_per_week", "recency_months")
    if ok:
        return [Finding(rule, MET, orders, evidence, tuple(counted), (), thresholds)]
    status = NOT_MET
    if not dated:
        # Nothing dated to measure: documentation, not a failed course, is what is missing.
        status = NEEDS_DOCUMENTATION
        missing = [point("pt-undated-only" if undated else "pt-none", weeks=needed)]
    elif sparse is not None and course_weeks(sparse) >= needed and (
            best_recent is None or course_weeks(best_recent) < needed):
        missing = [point("pt-sparse", visits=visits(sparse), weeks=course_weeks(sparse),
                         per_week=rule["min_visits_per_week"])]
    elif best_recent is None and not recent:
        missing = [point("pt-too-old", since=window_start, months=rule["recency_months"], weeks=needed)]
    elif best_recent is None:
        missing = [point("pt-too-short", weeks=max(course_weeks(c) for c in recent), needed=needed,
                         gap_days=rule["max_gap_days"])]
    else:
        missing = [point("pt-too-short", weeks=course_weeks(best_recent), needed=needed, gap_days=rule["max_gap_days"])]
    if flags:
        return [Finding(rule, WAIVED, orders, evidence + tuple(f.evidence for f in flags),
                        tuple(counted) + waiver_points(flags), tuple(missing), thresholds)]
    # A documented flag that waives nothing is said with what is missing: why no waiver applied.
    return [Finding(rule, status, orders, evidence, tuple(counted), tuple(missing) + refused, thresholds,
                    data={"weeks_needed": needed, "best_weeks": course_weeks(best) if best else 0})]
