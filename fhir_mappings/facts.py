"""Criteria inputs: what the chart documents, each fact pointing at the resource it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from terminology.levels import Interspace, LevelRange


@dataclass(frozen=True)
class Evidence:
    reference: str            # "Procedure/pt-3"
    description: str          # what it says, in a few words
    day: date | None = None
    quote: str | None = None  # the words read, when the evidence comes from text (a note, a report body)
    source: str | None = None  # where in the resource: "presentedForm[0]", "content[1].attachment", "note"

    def render(self) -> str:
        when = self.day.isoformat() if self.day else "undated"
        return f"{when} · {self.description} ({self.reference})"


@dataclass(frozen=True)
class OrderedProcedure:
    """One spine procedure class inside a draft order (an order may hold several)."""
    procedure_class: str                       # fusion, decompression, osteotomy_posterior, si_fusion, ...
    codes: tuple[str, ...]                     # CPT codes of this class on the order
    levels: tuple[LevelRange, ...]             # levels written for this procedure
    interspaces: tuple[Interspace, ...]


@dataclass(frozen=True)
class Order:
    reference: str                             # "ServiceRequest/sr-1"
    label: str                                 # how a surgeon would name it
    authored_on: date | None
    procedures: tuple[OrderedProcedure, ...]
    resource: dict = field(compare=False, hash=False)   # the draft order as sent, for update suggestions

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(p.procedure_class for p in self.procedures)

    def of_class(self, *classes: str) -> tuple[OrderedProcedure, ...]:
        return tuple(p for p in self.procedures if p.procedure_class in classes)


@dataclass(frozen=True)
class CareEpisode:
    kind: str                                  # physical_therapy, injection, medication, other
    start: date | None
    end: date | None
    evidence: Evidence
    period: bool = False                       # one record covering a course (start..end), not a visit
    assertion: str = "present"                 # present, or historical ("s/p ESI"): care done either way
    precision: str = "day"                     # day, month or year: how much of start/end was written
    ongoing: bool = False                      # still given when the chart was sent: an active prescription, no end


@dataclass(frozen=True)
class RedFlag:
    kind: str                                  # cauda_equina, progressive_motor_deficit, ...
    evidence: Evidence
    assertion: str = "present"                 # how the text asserted it (only present ones are made)
    regions: frozenset[str] = frozenset()      # cervical, thoracic, thoracolumbar, lumbosacral: as its words or code say
    qualifiers: frozenset[str] = frozenset()   # acute, healed, unstable (terminology/data/text/red_flag_details.yaml)
    motor_grade: int | None = None             # lowest manual-muscle-test grade (0-5) written with it


@dataclass(frozen=True)
class LevelFact:
    """What the chart says about one interspace (or about no stated level)."""
    kind: str                                  # spondylolisthesis, instability, stenosis, deformity, prior_fusion,
                                               # pseudarthrosis, hardware_failure, destabilizing_decompression
    interspace: Interspace | None              # None: the text names no level
    present: bool                              # False: documented as absent there ("no stenosis at L2-3")
    evidence: Evidence
    severity: str | None = None                # stenosis: mild .. severe; listhesis: Meyerding grade "1".."5";
                                               # deformity: "subtle" when hedged, else None
    value: float | None = None                 # a number stated with it (mm, %, degrees)
    assertion: str = "present"                 # present, negated (present=False), or historical (a prior fusion)


@dataclass(frozen=True)
class Measurement:
    """A numeric or positive/negative finding (terminology/data/measurements.json names)."""
    name: str                                  # pelvic_incidence, lumbar_lordosis, pi_ll_mismatch, cobb_angle, ...
    evidence: Evidence
    value: float | None = None
    unit: str = ""
    levels: tuple[LevelRange, ...] = ()
    test: str | None = None                    # si_provocative_test: which test (faber, thigh_thrust, ...)
    positive: bool | None = None               # tests: positive / negative
    guided: bool | None = None                 # SI-joint block: its record says image guidance (None: not a block)


@dataclass(frozen=True)
class Diagnosis:
    valueset: str                              # terminology value-set name
    evidence: Evidence
    onset: date | None = None
    coded: bool = False                        # an ICD-10-CM/SNOMED coding matched (not only text)


@dataclass(frozen=True)
class Facts:
    orders: tuple[Order, ...]
    care: tuple[CareEpisode, ...]
    red_flags: tuple[RedFlag, ...]
    today: date
    unavailable: tuple[str, ...] = ()
    level_facts: tuple[LevelFact, ...] = field(default=())
    measurements: tuple[Measurement, ...] = field(default=())
    diagnoses: tuple[Diagnosis, ...] = field(default=())
    unread: tuple[str, ...] = field(default=())   # what the chart holds but could not be read (a malformed date)
    clinical: tuple["ClinicalFact", ...] = field(default=())   # nicotine, labs, scores, symptoms, herniations
    birth_date: date | None = None                # the Patient's birthDate, for age-dependent rules

    def age(self) -> int | None:
        """Age in whole years on the order's date."""
        if self.birth_date is None:
            return None
        on = self.order_date()
        return on.year - self.birth_date.year - ((on.month, on.day) < (self.birth_date.month, self.birth_date.day))

    @property
    def spine_orders(self) -> tuple[Order, ...]:
        return tuple(o for o in self.orders if o.procedures)

    def order_date(self) -> date:
        """Durations run to the orders' authoredOn (contract, 'Time'); today only when absent."""
        dates = [o.authored_on for o in self.spine_orders if o.authored_on]
        return min(dates) if dates else self.today


@dataclass(frozen=True)
class ClinicalFact:
    """What the chart says about the patient beyond the levels (terminology/data/clinical_findings.yaml)."""
    kind: str          # nicotine, cotinine, hba1c, diabetes, odi, pain, adl_limit, neurogenic_claudication,
                       # radiculopathy, motor_deficit, sensory_deficit, reflex_change, back_pain, disc_herniation
    evidence: Evidence
    value: float | None = None                 # lab value, score
    unit: str = ""
    status: str | None = None                  # nicotine: current | former | never
    last_use: date | None = None               # nicotine: the quit date written, when there is one
    side: str | None = None                    # left | right | bilateral
    roots: tuple[str, ...] = ()                # nerve roots named or implied ("L5", "S1")
    interspaces: tuple[Interspace, ...] = ()   # levels named, or the roots' interspaces
    root_compression: bool = False             # disc herniation: a nerve root compressed by it
