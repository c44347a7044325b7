"""Named synthetic scenarios: what each chart shows and exactly which card topics the service
answers with. Every instance of a scenario (any seed, any index) must give those topics."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from . import charts
from .kit import Kit, shift_dates

MAX_SHIFT_DAYS = 730   # instances move up to two years back in time, all dates together


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected_topics: frozenset[str]
    chart: Callable[[Kit], charts.Chart]
    # shape -> (topics, why): where a shape cannot carry a fact the scenario turns on (a payer holds
    # no notes and no examination), the answer that shape gives, and why.
    shapes: tuple[tuple[str, frozenset[str], str], ...] = ()

    def expected_in(self, shape: str) -> frozenset[str]:
        return next((topics for name, topics, _ in self.shapes if name == shape), self.expected_topics)

    def differs_in(self, shape: str) -> str | None:
        """Why the shape's answer is not expected_topics, or None when it is the same."""
        return next((why for name, _, why in self.shapes if name == shape), None)

    def build(self, rng: random.Random, index: int) -> tuple[list[dict], list[dict], str]:
        """(draft orders, chart with Patient and Coverage first, the orders' authoredOn)."""
        kit = Kit(rng, index)
        head = [kit.patient(), kit.coverage()]
        orders, resources = self.chart(kit)
        shift = -rng.randint(0, MAX_SHIFT_DAYS)
        orders, chart = shift_dates(orders, shift), shift_dates(head + resources, shift)
        return orders, chart, orders[0]["authoredOn"]


def _s(name: str, topics: str, description: str, chart, **shapes: tuple[str, str]) -> Scenario:
    """shapes: shape=(its topics, why they differ) for a shape that cannot carry a fact the scenario needs."""
    return Scenario(name, description, frozenset(topics.split()), chart,
                    tuple((shape, frozenset(topics_.split()), why) for shape, (topics_, why) in shapes.items()))


_ALL = [
    _s("fusion-criteria-met", "criteria-met",
       "Single-level TLIF at a level with grade 1-2 spondylolisthesis; 8 weeks of PT and 9 months of care.",
       charts.fusion_criteria_met),
    _s("fusion-pt-missing", "pt-documentation-missing",
       "Fusion with PT mentioned in a note without dates; medication for 9 months.", charts.fusion_pt_missing),
    _s("fusion-pt-too-short", "pt-documentation-missing",
       "Fusion after 5 weekly PT visits (6 weeks required).", charts.fusion_pt_too_short),
    _s("fusion-red-flag-cauda-equina", "criteria-met",
       "Fusion days after a coded cauda equina syndrome, with no PT or other care: the red flag waives both.",
       charts.fusion_red_flag_cauda_equina),
    _s("fusion-conservative-care-short", "conservative-care-insufficient",
       "Fusion after 6 weekly PT visits that began ~6 weeks ago: PT met, 3 months of care not.",
       charts.fusion_conservative_care_short),
    _s("decompression-six-weeks-met", "criteria-met",
       "Laminectomy at a level with moderate or severe stenosis after 7-8 weeks of care (6 weeks required).",
       charts.decompression_six_weeks_met),
    _s("fusion-level-unsupported", "level-unsupported",
       "Listhesis at one level, fusion ordered one level wider: the card suggests the supported level.",
       charts.fusion_level_unsupported),
    _s("fusion-stenosis-only", "level-unsupported",
       "Fusion at a level with severe stenosis and nothing else: stenosis alone does not support fusion.",
       charts.fusion_stenosis_only),
    _s("fusion-instability-borderline", "level-unsupported",
       "Fusion for 2 mm translation on flexion-extension films: NASS needs more than 2 mm.",
       charts.fusion_instability_at_threshold),
    _s("fusion-instability-over-threshold", "criteria-met",
       "Fusion for 2.5 mm translation: over NASS's 2 mm (Aetna's 4 mm and eviCore's 3 mm are not met).",
       charts.fusion_instability_over_threshold),
    _s("decompression-no-levels", "levels-not-documented",
       "Laminectomy ordered without levels.", charts.decompression_no_levels),
    _s("decompression-mild-stenosis", "level-unsupported",
       "Laminectomy at a level whose stenosis is graded mild or mild to moderate.", charts.decompression_mild_stenosis),
    _s("osteotomy-indicated-pi-ll", "osteotomy-indicated criteria-met",
       "Posterior osteotomy with a PI-LL mismatch of 15-25 degrees.", charts.osteotomy_indicated_pi_ll),
    _s("osteotomy-unsupported", "osteotomy-unsupported",
       "Posterior osteotomy with a PI-LL mismatch of at most 8 degrees.", charts.osteotomy_unsupported),
    _s("osteotomy-subtle-curvature", "osteotomy-unsupported",
       "Posterior osteotomy for a 'very subtle' scoliotic curvature, which is not a deformity.",
       charts.osteotomy_subtle_curvature),
    _s("si-fusion-met", "criteria-met",
       "SI-joint fusion with 3-5 positive tests, two blocks of 75-95 % relief, pain 6-9/10 for ~9 months.",
       charts.si_fusion_met,
       payer=("si-fusion-unsupported", "a payer holds the two blocks as claim lines without their relief, and no "
                                        "examination: the provocative tests and the relief are not on a claim")),
    _s("si-fusion-two-tests", "si-fusion-unsupported",
       "SI-joint fusion with only 2 positive provocative tests.", charts.si_fusion_two_tests),
    _s("si-fusion-block-74pct", "si-fusion-unsupported",
       "SI-joint fusion whose second block gave 74 % relief (75 % required by NASS; Aetna's 70 % is met).",
       charts.si_fusion_block_74pct),
    _s("pelvic-fixation-short-construct", "pelvic-fixation-unsupported",
       "L3-S1 or L4-S1 fusion with pelvic fixation, every level supported, no deformity or revision.",
       charts.pelvic_fixation_short_construct),
    _s("exploration-bundled", "exploration-bundled criteria-met",
       "Exploration of fusion (22830) ordered with a supported laminectomy.", charts.exploration_bundled),
    _s("inpatient-single-level", "inpatient-unsupported",
       "Supported single-level TLIF with an inpatient admission.", charts.inpatient_single_level),
    _s("not-spine", "",
       "An MRI order: not spine surgery, so no cards.", charts.not_spine),
    _s("seed-000", "osteotomy-indicated pt-documentation-missing",
       "Seed review 000: flat back after L1-5 fusion; ALIF + PSF T10-pelvis + osteotomy; no formal PT.",
       charts.seed_000),
    _s("seed-001", "level-unsupported pelvic-fixation-unsupported pt-documentation-missing si-fusion-unsupported",
       "Seed review 001: T12-S2 fusion, L1-S1 laminectomy and SI fusion; PT without dates.", charts.seed_001),
    _s("seed-002", "exploration-bundled level-unsupported levels-not-documented osteotomy-unsupported "
       "pelvic-fixation-unsupported pt-documentation-missing si-fusion-unsupported",
       "Seed review 002: two-stage fusion, exploration, decompression without levels, osteotomies, SI fusion.",
       charts.seed_002),
]

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}


def names() -> list[str]:
    return list(SCENARIOS)
