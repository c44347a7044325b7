"""Resources -> ClinicalFacts: nicotine status and last use, cotinine, HbA1c and diabetes, ODI and
pain scores, limits on daily activities, symptoms and neurological findings with side and root,
and disc herniations compressing a root, each at its levels.

Coded first (LOINC Observations, ICD-10-CM Conditions, SNOMED answers), then the text of notes,
report bodies and string values, read sentence by sentence. A mention counts only as the text
reader (fhir_mappings.text) asserts it: present; for nicotine a negated mention ("denies tobacco")
says never, a historical one ("history of smoking") says former. Vocabulary:
terminology/data/clinical_findings.yaml.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from importlib import resources as package_files

import yaml

from terminology.levels import Interspace, find_levels
from terminology.systems import ICD10CM, LOINC, SNOMED

from .dates import parse_date
from .facts import ClinicalFact, Evidence
from .resources import clinical_period, codings, concept_texts, is_inactive, is_refuted, narrative_texts, obj, reference
from .text import SentenceMemo, document
from .text.dates import find_dates
from .text.gate import EVERYTHING, Gated, gated

SYMPTOM_KINDS = ("neurogenic_claudication", "radiculopathy", "motor_deficit", "sensory_deficit", "reflex_change",
                 "back_pain")
QUOTE_LIMIT = 200


@dataclass(frozen=True)
class _Vocabulary:
    data: dict
    patterns: dict[str, re.Pattern]
    roots: dict[str, tuple[tuple[re.Pattern, str], ...]]
    gates: dict[str, Gated]                              # the patterns, each run only where its literals stand
    root_gates: dict[str, tuple[tuple[Gated, str], ...]]
    ids: frozenset[int]                                  # every gated pattern a sentence's reading runs


def _compile(text: str) -> re.Pattern:
    return re.compile(text, re.IGNORECASE)


@cache
def _data() -> dict:
    return yaml.safe_load(package_files.files("terminology").joinpath("data", "clinical_findings.yaml")
                          .read_text("utf-8"))


@cache
def vocabulary() -> _Vocabulary:
    data = _data()
    n, h, d, s = data["nicotine"], data["hba1c"], data["diabetes"], data["scores"]
    patterns = {
        "nicotine": _compile(n["mention"]), "never": _compile(n["never"]), "former": _compile(n["former"]),
        "current": _compile(n["current"]), "cotinine": _compile(n["cotinine_text"]), "hba1c": _compile(h["text"]),
        "diabetes": _compile(d["text"]), "not_diabetes": _compile(d["not"]), "odi": _compile(s["odi"]["text"]),
        "pain": _compile(s["pain"]["text"]), "adl_limit": _compile(data["adl"]["phrases"]),
        "herniation": _compile(data["herniation"]["text"]),
        "root_compression": _compile(data["herniation"]["root_compression"]),
        "root": _compile(data["roots"]["named"]),
        **{kind: _compile(p) for kind, p in data["symptoms"].items()},
        **{f"side_{side}": _compile(p) for side, p in data["sides"].items()},
    }
    roots = {group: tuple((_compile(p), root) for p, root in data["roots"][group].items())
             for group in ("muscles", "reflexes", "regions")}
    gates = {name: gated(pattern) for name, pattern in patterns.items()}
    gates["out_of_ten"] = gated(_OUT_OF_TEN)
    root_gates = {group: tuple((gated(pattern), root) for pattern, root in found) for group, found in roots.items()}
    ids = frozenset(g.id for g in gates.values()) | {g.id for found in root_gates.values() for g, _ in found}
    return _Vocabulary(data, patterns, roots, gates, root_gates, ids)


def root_interspaces(roots) -> tuple[Interspace, ...]:
    table = vocabulary().data["roots"]["interspaces"]
    return tuple(sorted({Interspace.parse(s) for root in roots for s in table.get(root, ())}))


# --- text ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Read:
    kind: str
    quote: str
    value: float | None = None
    unit: str = ""
    status: str | None = None
    last_use: date | None = None
    relative: tuple[int, str] | None = None   # "quit 3 months ago": (3, "months"), resolved against the record date
    side: str | None = None
    roots: tuple[str, ...] = ()
    interspaces: tuple[Interspace, ...] = ()
    root_compression: bool = False


def _values() -> dict:
    """clinical_findings.yaml's value patterns, with the number's group put in where they name it."""
    data = _data()
    values = dict(data["values"])
    number = values.pop("number")
    words = values.pop("ago_words")
    return {"gate": "|".join(data["text_gate"]), "words": words,
            **{name: pattern.replace("{number}", number) for name, pattern in values.items()}}


_VALUES = _values()
_SCORE_AFTER = re.compile(_VALUES["score_after"], re.IGNORECASE)
_OUT_OF_TEN = re.compile(_VALUES["out_of_ten"])       # digits and a slash: no case to ignore
_PERCENT_AFTER = re.compile(_VALUES["percent_after"], re.IGNORECASE)
_OF_FIFTY = re.compile(_VALUES["of_fifty"], re.IGNORECASE)
_HBA1C_AFTER = re.compile(_VALUES["hba1c_after"], re.IGNORECASE)
_COTININE_AFTER = re.compile(_VALUES["cotinine_after"], re.IGNORECASE)
_NEGATIVE = re.compile(_VALUES["negative"], re.IGNORECASE)
_QUIT_YEAR = re.compile(_VALUES["quit_year"], re.IGNORECASE)
_AGO = re.compile(_VALUES["ago"], re.IGNORECASE)
_CONTRAST = re.compile(_data()["nicotine"]["contrast"], re.IGNORECASE)
_CURRENT_USE = re.compile(_data()["nicotine"]["current_use"], re.IGNORECASE)
_NOT_NICOTINE = re.compile(_data()["nicotine"]["not_nicotine"], re.IGNORECASE)
_WORD_NUMBERS = dict(_VALUES["words"])


@cache
def _hba1c_units() -> dict[str, dict]:
    return {unit.lower(): how for unit, how in _data()["hba1c"]["ngsp_pct_from"].items()}


def hba1c_pct(value: float, unit: str) -> float | None:
    """An HbA1c in NGSP percent, the unit of the rules' limits, from a value in unit (a UCUM code or the
    unit as written; clinical_findings.yaml hba1c.ngsp_pct_from). None when the unit cannot be read as
    percent: a value in mmol/mol or mg/dL compared with 8 % would decide the wrong way."""
    how = _hba1c_units().get("".join(unit.split()).lower())
    if how is None or ("below" in how and value >= how["below"]):
        return None
    return round(value * how["factor"] + how["offset"], _data()["hba1c"]["ngsp_decimals"])


def _quote(text: str, lo: int, hi: int) -> str:
    quote = " ".join(text[lo:hi].split())
    return quote if len(quote) <= QUOTE_LIMIT else quote[:QUOTE_LIMIT - 1] + "…"


def _side(sentence: str, gate, lo: int) -> str | None:
    g = vocabulary().gates
    found = [side for side in ("bilateral", "left", "right") if g[f"side_{side}"].search(gate, sentence, lo)]
    if "bilateral" in found or {"left", "right"} <= set(found):
        return "bilateral"
    return found[0] if found else None


def _roots(sentence: str, gate, lo: int) -> tuple[str, ...]:
    v = vocabulary()
    roots = [m["root"].upper() for m in v.gates["root"].finditer(gate, sentence, lo)]
    for group in ("muscles", "reflexes", "regions"):
        roots += [root for pattern, root in v.root_gates[group] if pattern.search(gate, sentence, lo)]
    return tuple(dict.fromkeys(roots))


def _levels(sentence: str) -> tuple[Interspace, ...]:
    return tuple(sorted({s for m in find_levels(sentence) for s in m.range.interspaces()}))


def _stated_status(text: str, assertion: str, part: tuple[int, int]) -> str | None:
    """What one mention says of the patient's nicotine use, from the cues of its own part of the sentence
    (between contrasts: "Denies smoking | but uses chewing tobacco"): never, former or current; "" when its
    part has no cue ("Smoked 1 ppd for 20 years; quit 2015": the history's part); None when it says nothing
    of the patient (a plan, a hedge, a relative's, counselling, cannabis)."""
    g = vocabulary().gates
    a, b = part
    if assertion in ("hypothetical", "possible", "family", "counselling"):
        return None
    if assertion != "negated" and _NOT_NICOTINE.search(text, a, b):
        return None           # "vapes marijuana": not nicotine
    former = assertion == "historical" or g["former"].pattern.search(text, a, b)
    if assertion == "negated" or g["never"].pattern.search(text, a, b):
        return "former" if former else "never"      # "Smoking: no, quit 10 years ago"
    if former:
        return "former"
    return "current" if _CURRENT_USE.search(text, a, b) else ""


def _nicotine(text: str, lo: int, hi: int, statuses: list[str]) -> _Read:
    """The sentence's status: the most active of those its mentions state ("Former smoker; now vapes daily"
    is current); when none states one by its own part, the sentence's cues, as one statement, with current
    use the default ("Occasional cigar smoker"). A former use's date is any the sentence gives."""
    stated = [status for status in statuses if status]
    if stated:
        status = max(stated, key=_ACTIVITY.__getitem__)
    else:
        g = vocabulary().gates
        status = "never" if g["never"].pattern.search(text, lo, hi) else \
            "former" if g["former"].pattern.search(text, lo, hi) else "current"
    if status != "former":
        return _Read("nicotine", _quote(text, lo, hi), status=status)
    last_use, relative = None, None
    dates = find_dates(text, lo, hi)
    if dates:
        last_use = max(_last_day(d.day, d.precision) for d in dates)
    elif (year := _QUIT_YEAR.search(text, lo, hi)):
        last_use = _last_day(date(int(year.group(1)), 1, 1), "year")
    elif (ago := _AGO.search(text, lo, hi)):
        amount = ago.group(1).lower()
        relative = (int(amount) if amount.isdigit() else _WORD_NUMBERS[amount], ago.group(2).lower())
    return _Read("nicotine", _quote(text, lo, hi), status="former", last_use=last_use, relative=relative)


_ACTIVITY = {"current": 2, "former": 1, "never": 0}


def _part(sentence: str, start: int, end: int) -> tuple[int, int]:
    """The stretch of the sentence around [start, end) between contrasts (clinical_findings.yaml)."""
    lo = 0
    for match in _CONTRAST.finditer(sentence, 0, start):
        lo = match.end()
    after = _CONTRAST.search(sentence, end)
    return lo, after.start() if after else len(sentence)


def _last_day(day: date, precision: str) -> date:
    """The last day a month or year written may mean: "quit in March 2025" is nicotine-free from 3/31 at the
    latest, so the free weeks are never overstated."""
    if precision == "year":
        return date(day.year, 12, 31)
    if precision == "month":
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return following - timedelta(days=1)
    return day


def _value_after(pattern: re.Pattern, text: str, end: int, hi: int) -> re.Match | None:
    return pattern.match(text[end:hi])


def _sentence_reads(text: str, lo: int, hi: int, read) -> list[_Read]:
    """Every fact one sentence states; read is the text's Document. Each pattern runs only where the
    gate finds its literals in the sentence (fhir_mappings.text.gate: the same matches, found sooner)."""
    v = vocabulary()
    gate = read.found_in(lo, hi)
    g = v.gates
    sentence = text[lo:hi]
    found: list[_Read] = []

    # "absent" and "diminished" name a reflex finding ("absent ankle jerk"): they negate nothing else.
    findings = [(lo + m.start(), lo + m.end()) for m in g["reflex_change"].finditer(gate, sentence, lo)]

    def asserted(match: re.Match) -> str:
        start, end = lo + match.start(), lo + match.end()
        trigger = read.trigger_of(start, end)
        if trigger is not None and any(a <= trigger.start and trigger.end <= b and not (a <= start < b)
                                       for a, b in findings):
            return "present"
        return read.assertion(start, end)

    if not g["cotinine"].search(gate, sentence, lo):
        statuses = []
        for m in g["nicotine"].finditer(gate, sentence, lo):
            a, b = _part(sentence, m.start(), m.end())
            status = _stated_status(text, asserted(m), (lo + a, lo + b))
            if status is not None:
                statuses.append(status)
        if statuses:
            found.append(_nicotine(text, lo, hi, statuses))
    for kind, after in (("hba1c", _HBA1C_AFTER), ("odi", _PERCENT_AFTER)):
        for m in g[kind].finditer(gate, sentence, lo):
            value = _value_after(after, sentence, m.end(), len(sentence))
            if value and asserted(m) == "present":
                number = float(value.group(1))
                if kind == "odi" and number <= 50 and not value.group(2) and _OF_FIFTY.match(sentence, m.end() + value.end()):
                    number *= 2         # the raw score out of 50 is half the index
                if kind == "hba1c":
                    # "A1c 7.2" without a unit is percent, as US labs report it; "53 mmol/mol" is IFCC.
                    number = hba1c_pct(number, value.group(2) or "%")
                if number is not None and ((kind == "hba1c" and 3 <= number <= 20) or (kind == "odi" and number <= 100)):
                    found.append(_Read(kind, _quote(text, lo, hi), number, "%"))
                    break
    for m in g["cotinine"].finditer(gate, sentence, lo):
        if _NEGATIVE.match(sentence[m.end():]):     # a negative result, not a negated mention
            found.append(_Read("cotinine", _quote(text, lo, hi), 0.0, "ng/mL"))
        elif asserted(m) != "present":
            continue
        elif (value := _value_after(_COTININE_AFTER, sentence, m.end(), len(sentence))):
            found.append(_Read("cotinine", _quote(text, lo, hi), float(value.group(2)), "ng/mL"))
        break
    for m in g["out_of_ten"].finditer(gate, sentence, lo):
        if g["pain"].search(gate, sentence, lo) and read.assertion(lo + m.start(), lo + m.end()) == "present":
            found.append(_Read("pain", _quote(text, lo, hi), float(m.group(1)), "/10"))
            break
    else:
        for m in g["pain"].finditer(gate, sentence, lo):
            value = _SCORE_AFTER.match(sentence[m.end():])
            if value and m.group().lower() in ("nrs", "vas") and float(value.group(1)) <= 10 and asserted(m) == "present":
                found.append(_Read("pain", _quote(text, lo, hi), float(value.group(1)), "/10"))
                break
    if (m := g["diabetes"].search(gate, sentence, lo)) and not g["not_diabetes"].search(gate, sentence, lo) \
            and asserted(m) == "present":
        found.append(_Read("diabetes", _quote(text, lo, hi)))
    if (m := g["adl_limit"].search(gate, sentence, lo)) and asserted(m) == "present":
        found.append(_Read("adl_limit", _quote(text, lo, hi)))
    roots, side, levels = None, None, None
    for kind in SYMPTOM_KINDS:
        for m in g[kind].finditer(gate, sentence, lo):
            if asserted(m) != "present":
                continue
            if roots is None:
                roots, side, levels = _roots(sentence, gate, lo), _side(sentence, gate, lo), _levels(sentence)
            spaces = levels if kind != "back_pain" else ()
            found.append(_Read(kind, _quote(text, lo, hi), side=side, roots=roots if kind != "back_pain" else (),
                               interspaces=tuple(sorted(set(spaces) | set(root_interspaces(roots))))
                               if kind != "back_pain" else ()))
            break
    for m in g["herniation"].finditer(gate, sentence, lo):
        if asserted(m) != "present":
            continue
        compressed = bool(g["root_compression"].search(gate, sentence, lo))
        named_roots = _roots(sentence, gate, lo)
        found.append(_Read("disc_herniation", _quote(text, lo, hi), side=_side(sentence, gate, lo), roots=named_roots,
                           interspaces=_levels(sentence), root_compression=compressed))
        break
    return found


@lru_cache(maxsize=4096)
def read_text(text: str) -> tuple[_Read, ...]:
    """The facts a text states, sentence by sentence. Cached by text; emptied per chart (build.py)."""
    read = document(text)
    if not _may_state(text, read):
        return ()
    found: list[_Read] = []
    ids = vocabulary().ids
    for lo, hi in read.spans():
        gate = read.found_in(lo, hi)
        if gate is not EVERYTHING and ids.isdisjoint(gate):
            continue       # no pattern of the sentence readers can match in it
        key = read.sentence_key(lo, hi)
        reads = SENTENCE_READS.get(key) if key is not None else None
        if reads is None:
            reads = _sentence_reads(text, lo, hi, read)
            if key is not None:
                SENTENCE_READS[key] = reads
        found += reads
    return tuple(found)


# A sentence's facts hold no offsets (its quote and values only), so they are shared by every
# sentence with its key in the chart.
SENTENCE_READS = SentenceMemo()


_GATE = re.compile(_VALUES["gate"], re.IGNORECASE)


_TEXT_GATE = gated(_GATE)


def _may_state(text: str, read) -> bool:
    return bool(_TEXT_GATE.search(read.found_in(), text))


# --- codes -----------------------------------------------------------------------------------------

def _codes(resource: dict, *fields: str) -> set[tuple[str | None, str]]:
    return set(codings(resource, *fields))


def _loinc(resource: dict, codes) -> bool:
    return any(system == LOINC and code in codes for system, code in codings(resource, "code"))


def _quantity(resource: dict) -> tuple[float | None, str]:
    quantity = obj(resource.get("valueQuantity"))
    value = quantity.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), str(quantity.get("unit") or quantity.get("code") or "")
    if isinstance(resource.get("valueInteger"), int):
        return float(resource["valueInteger"]), ""
    return None, ""


@cache
def _observation_loinc() -> dict[str, frozenset[str]]:
    """The LOINC codes each observed value is read by (sets made once, not per Observation)."""
    v = vocabulary().data
    n = v["nicotine"]
    return {"status": frozenset(n["status_loinc"]), "cotinine": frozenset(n["cotinine_loinc"]),
            "hba1c": frozenset(v["hba1c"]["loinc"]), "odi": frozenset(v["scores"]["odi"]["loinc"]),
            "pain": frozenset(v["scores"]["pain"]["loinc"])}


def _observation(resource: dict, evidence) -> list[ClinicalFact]:
    v = vocabulary().data
    n = v["nicotine"]
    known = _observation_loinc()
    facts = []
    loinc = {code for system, code in codings(resource, "code") if system == LOINC}
    label = next(concept_texts(resource, "code"), "") or "Observation"
    if not loinc.isdisjoint(known["status"]):
        answers = _codes(resource, "valueCodeableConcept")
        status = next((s for s, codes in n["snomed"].items()
                       for system, code in answers if system == SNOMED and code in codes), None)
        if status is None:
            texts = list(concept_texts(resource, "valueCodeableConcept"))
            if isinstance(resource.get("valueString"), str):
                texts.append(resource["valueString"])
            statuses = [r.status for t in texts for r in read_text(f"Smoking status: {t}.") if r.kind == "nicotine"]
            status = statuses[0] if statuses else None
        if status:
            quit_day = None
            for component in resource.get("component") or ():
                if isinstance(component, dict) and _loinc(component, n["quit_date_loinc"]):
                    quit_day = parse_date(component.get("valueDateTime"))
            answer = next(concept_texts(resource, "valueCodeableConcept"), status)
            facts.append(ClinicalFact("nicotine", evidence(f"{label}: {answer}"), status=status,
                                      last_use=quit_day if status == "former" else None))
        return facts
    value, unit = _quantity(resource)
    if value is None:
        return facts
    folded = " ".join(concept_texts(resource, "code"))
    p = vocabulary().patterns
    for kind, pattern in (("cotinine", p["cotinine"]), ("hba1c", p["hba1c"]), ("odi", p["odi"]), ("pain", None)):
        if not loinc.isdisjoint(known[kind]) or (pattern is not None and pattern.search(folded)):
            said = f"{label} {value:g}{unit and ' ' + unit}"
            if kind == "hba1c":
                facts.append(_hba1c_observation(resource, value, said, evidence))
            else:
                facts.append(ClinicalFact(kind, evidence(said), value, unit))
            return facts
    if p["pain"].search(folded) and 0 <= value <= 10:
        facts.append(ClinicalFact("pain", evidence(f"{label} {value:g}"), value, "/10"))
    return facts


def _hba1c_observation(resource: dict, value: float, said: str, evidence) -> ClinicalFact:
    """The HbA1c in NGSP percent; its unit is the UCUM code where there is one (the display is only words).
    A value without a unit is read as percent, as before; one in a unit that cannot be converted is kept
    as evidence without a value (the README's rule for structured values)."""
    quantity = obj(resource.get("valueQuantity"))
    unit = str(quantity.get("code") or quantity.get("unit") or "").strip()
    if not unit:
        return ClinicalFact("hba1c", evidence(said), value, "%")
    pct = hba1c_pct(value, unit)
    if pct is not None and pct != value:      # converted: say what it was read as
        said += f" ({pct:g} % NGSP)"
    return ClinicalFact("hba1c", evidence(said), pct, "%" if pct is not None else unit)


def _condition(resource: dict, evidence) -> list[ClinicalFact]:
    v = vocabulary().data
    facts = []
    label = next(concept_texts(resource, "code"), "")
    for system, code in _codes(resource, "code"):
        if system != ICD10CM:
            continue
        for status, prefixes in v["nicotine"]["icd10"].items():
            if any(code.upper().startswith(prefix) for prefix in prefixes):
                last = parse_date(resource.get("abatementDateTime")) if status == "former" else None
                facts.append(ClinicalFact("nicotine", evidence(f"{code} {label}".strip()), status=status, last_use=last))
        if any(code.upper().startswith(prefix) for prefix in v["diabetes"]["icd10"]):
            facts.append(ClinicalFact("diabetes", evidence(f"{code} {label}".strip())))
    return facts


def clinical_facts_of(resource: dict) -> list[ClinicalFact]:
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if rtype not in ("Observation", "Condition", "DiagnosticReport", "DocumentReference", "Encounter",
                     "QuestionnaireResponse", "ClinicalImpression", "Procedure"):
        return []
    if is_refuted(resource) or (rtype == "Condition" and is_inactive(resource)):
        return []
    when: list = []

    def evidence(description: str, quote: str | None = None) -> Evidence:
        if not when:       # only for a resource that states something
            when.append(clinical_period(resource)[0])
        return Evidence(reference(resource), description, when[0], quote=quote)

    facts: list[ClinicalFact] = []
    if rtype == "Observation":
        facts += _observation(resource, evidence)
    if rtype == "Condition":
        facts += _condition(resource, evidence)
        texts = list(dict.fromkeys(concept_texts(resource, "code")))
    else:
        texts = []
    texts += narrative_texts(resource)
    coded = {f.kind for f in facts}
    for text in texts:
        for r in read_text(text):
            if r.kind in coded and r.kind in ("nicotine", "diabetes"):
                continue
            said = evidence(r.quote, r.quote)
            last_use = r.last_use
            if r.relative and said.day:
                amount, unit = r.relative
                last_use = said.day - timedelta(days=amount * {"day": 1, "week": 7, "month": 30, "year": 365}[unit])
            facts.append(ClinicalFact(r.kind, said, r.value, r.unit, r.status, last_use,
                                      r.side, r.roots, r.interspaces, r.root_compression))
    return facts
