"""All card wording, keyed by topic. Summaries stay under 140 characters (CDS Hooks; Inferno)."""
from __future__ import annotations

from dataclasses import dataclass

from criteria import topics


@dataclass(frozen=True)
class Template:
    indicator: str
    display: str          # the topic Coding's display
    summary: str          # str.format over the finding's fields (see builder._summary_fields)


TEMPLATES = {
    topics.PT_DOCUMENTATION_MISSING: Template(
        "warning", "Formal physical therapy not documented",
        "Formal physical therapy of {weeks_needed} weeks not documented for {orders}"),
    topics.CONSERVATIVE_CARE_INSUFFICIENT: Template(
        "warning", "Conservative care shorter than required",
        "Conservative care shorter than the {required} required for {requirement_for}"),
    topics.LEVEL_UNSUPPORTED: Template(
        "warning", "Levels without a documented indication",
        "No documented indication for {procedure} at {unsupported}; supported: {supported}"),
    topics.LEVELS_NOT_DOCUMENTED: Template(
        "warning", "Levels not documented on the order",
        "Levels not documented for {orders}: medical necessity cannot be checked"),
    topics.PELVIC_FIXATION_UNSUPPORTED: Template(
        "warning", "Pelvic fixation without a documented indication",
        "Pelvic fixation not supported: no long, deformity or L5-S1 revision construct documented"),
    topics.EXPLORATION_BUNDLED: Template(
        "info", "Exploration of fusion is bundled",
        "Exploration of fusion is bundled with the other spine procedures in the region"),
    topics.INPATIENT_UNSUPPORTED: Template(
        "warning", "Inpatient stay not supported by the procedure",
        "Inpatient stay requested for surgery that is usually ambulatory"),
    topics.OSTEOTOMY_INDICATED: Template(
        "info", "Deformity meets the osteotomy threshold",
        "Documented deformity meets the osteotomy threshold ({measure})"),
    topics.OSTEOTOMY_UNSUPPORTED: Template(
        "warning", "Osteotomy without documented deformity",
        "Osteotomy ordered without documented deformity that meets the threshold"),
    topics.SI_FUSION_UNSUPPORTED: Template(
        "warning", "SI-joint fusion criteria not documented",
        "SI-joint fusion: diagnostic criteria not documented ({missing_count} missing)"),
    topics.CRITERIA_MET: Template(
        "info", "Documentation meets the criteria checked",
        "Documentation meets the {count} medical-necessity criteria checked for {orders}"),
    topics.DATA_UNAVAILABLE: Template(
        "warning", "Chart data could not be retrieved",
        "Could not check every criterion: part of the chart could not be retrieved"),
}

SUMMARY_LIMIT = 139

OVERRIDE_REASONS = (
    ("documented-elsewhere", "Documentation exists outside this chart; will attach"),
    ("urgent-clinical-need", "Urgent clinical need (red flag) documented in the note"),
    ("patient-cannot-complete", "Patient unable to complete conservative care"),
    ("clinical-judgment", "Surgeon's clinical judgment; reasons in the note"),
)
