"""Hypothesis strategies for valid input: raw NDJSON-contract dicts (docs/input-contract.md, "NDJSON") and the
validated events they parse into. Shared by the property tests and the interop fuzzers: a parser for
another format can render `raw_events()` in its format and compare with `parse_event` of the dict.

Every raw dict these strategies produce is valid: `parse_event(raw)` succeeds. Values are drawn in
the canonical unit inside the analyte's plausible range, biased towards the clinically interesting
part of it, then expressed in any accepted unit of the analyte.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import strategies as st

from monitor.analytes import ANALYTES, EGFR_ANALYTES
from monitor.events import DRUGS, LabResult, MedicationEvent, Patient, parse_event
from monitor.timeline import Timeline

FIRST_DAY = date(2019, 1, 1)
LAST_DAY = date(2026, 12, 31)
# where the rules' thresholds are (canonical units): most draws land here, the rest anywhere plausible
INTERESTING: dict[str, tuple[float, float]] = {
    "anti_pla2r": (0.0, 400.0), "proteinuria_24h": (0.0, 15.0), "upcr": (0.0, 15.0),
    "serum_albumin": (10.0, 50.0), "serum_creatinine": (40.0, 400.0),
    **{key: (10.0, 130.0) for key in EGFR_ANALYTES},  # every equation's reported eGFR
    "csa_trough": (20.0, 300.0), "tac_trough": (0.5, 20.0), "cd19_count": (0.0, 300.0),
    "wbc": (0.5, 12.0), "neutrophils": (0.2, 8.0),
}
FREQUENCIES = ("once", "qd", "bid", "tid", "qw", "q2w", "q4w")
DOSE_UNITS = ("mg", "g", "ug", "mcg", "mg/kg", "mg/m2", "iu", "units")
STATUSES = ("final", "corrected", "amended", "preliminary", "entered-in-error")
SOURCE_IDS = ("S1", "S2", "S3", "S4")  # a small pool, so that versions of one identity meet

patient_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,11}", fullmatch=True)
days = st.dates(FIRST_DAY, LAST_DAY)
statuses = st.one_of(st.just("final"), st.sampled_from(STATUSES))


@st.composite
def effective_ats(draw: st.DrawFn, on: st.SearchStrategy[date] = days) -> str:
    """A date, or a date-time with a zone, as a feed would send it."""
    d = draw(on)
    if draw(st.booleans()):
        return d.isoformat()
    # stay on the same UTC date, so that the clinical day is the drawn day whatever the offset
    hour = draw(st.integers(2, 21))
    offset = draw(st.sampled_from(["Z", "+01:00", "-02:00"]))
    return datetime.combine(d, time(hour, draw(st.integers(0, 59)))).isoformat() + offset


@st.composite
def canonical_values(draw: st.DrawFn, analyte: str) -> float:
    low, high = ANALYTES[analyte].plausible
    pick = draw(st.integers(0, 9))
    if pick == 0:
        # the limits themselves: a creatinine of 5 umol/L once made a computed eGFR crash assess()
        return draw(st.sampled_from([low, round(high * 0.999, 3)]))
    # an analyte without an interesting range here is drawn over its whole plausible range
    lo, hi = INTERESTING.get(analyte, (low, high)) if pick > 2 else (low, high)
    value = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
    return round(value, 3)


def _identity_fields(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["source"] = "lab"
        out["source_id"] = draw(st.sampled_from(SOURCE_IDS))
    if draw(st.booleans()):
        out["status"] = draw(statuses)
    if draw(st.integers(0, 3)) == 0:
        out["recorded_at"] = draw(effective_ats())
    return out


@st.composite
def raw_labs(draw: st.DrawFn, patient_id: str | None = None, on: st.SearchStrategy[date] = days,
             identities: bool = True) -> dict[str, Any]:
    """A valid lab line: any analyte (key or LOINC code), any accepted unit, any status."""
    key = draw(st.sampled_from(sorted(ANALYTES)))
    spec = ANALYTES[key]
    unit = draw(st.sampled_from(sorted(spec.units)))
    factor = spec.units[unit]
    # keep a margin below the upper limit: the unit round trip must not leave the plausible range
    canonical = min(draw(canonical_values(key)), spec.plausible[1] * 0.999)
    raw: dict[str, Any] = {
        "type": "lab",
        "patient_id": patient_id if patient_id is not None else draw(patient_ids),
        "analyte": draw(st.sampled_from([key, *spec.loinc])),
        "value": canonical / factor,
        "unit": unit,
        "effective_at": draw(effective_ats(on)),
    }
    if draw(st.integers(0, 9)) == 0:
        raw["comparator"] = draw(st.sampled_from(["<", ">", "<=", ">="]))
    if identities:
        raw.update(_identity_fields(draw))
    return raw


@st.composite
def raw_medications(draw: st.DrawFn, patient_id: str | None = None, on: st.SearchStrategy[date] = days,
                    identities: bool = True) -> dict[str, Any]:
    """A valid medication line: any drug, any frequency, with or without dose and end."""
    start = draw(on)
    raw: dict[str, Any] = {
        "type": "medication",
        "patient_id": patient_id if patient_id is not None else draw(patient_ids),
        "drug": draw(st.sampled_from(DRUGS)),
        "frequency": draw(st.sampled_from(FREQUENCIES)),
        "start": start.isoformat(),
    }
    if draw(st.integers(0, 4)):
        unit = draw(st.sampled_from(DOSE_UNITS))
        top = 2.0 if unit == "g" else 2000.0
        raw["dose"] = round(draw(st.floats(0, top, allow_nan=False)), 2)
        raw["unit"] = unit
    if draw(st.booleans()):
        raw["end"] = (start + timedelta(days=draw(st.integers(0, 400)))).isoformat()
    if draw(st.booleans()):
        raw["route"] = draw(st.sampled_from(["iv", "oral", "sc"]))
    if identities:
        raw.update(_identity_fields(draw))
    return raw


@st.composite
def raw_patients(draw: st.DrawFn, patient_id: str | None = None) -> dict[str, Any]:
    """A valid patient line; birth date, sex and body size are each optional."""
    raw: dict[str, Any] = {"type": "patient",
                           "patient_id": patient_id if patient_id is not None else draw(patient_ids)}
    if draw(st.integers(0, 3)):
        raw["birth_date"] = draw(st.dates(date(1930, 1, 1), date(2005, 12, 31))).isoformat()
    if draw(st.integers(0, 3)):
        raw["sex"] = draw(st.sampled_from(["male", "female", "other", "unknown"]))
    if draw(st.booleans()):
        raw["weight_kg"] = round(draw(st.floats(35, 160)), 1)
    if draw(st.booleans()):
        raw["height_cm"] = round(draw(st.floats(140, 205)), 1)
    return raw


def raw_events(patient_id: str, on: st.SearchStrategy[date] = days,
               identities: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Any valid event line of one patient (labs most often, as in real feeds)."""
    return st.one_of(
        raw_labs(patient_id, on, identities), raw_labs(patient_id, on, identities),
        raw_medications(patient_id, on, identities), raw_patients(patient_id),
    )


AnyEvent = Patient | LabResult | MedicationEvent


def events(patient_id: str, on: st.SearchStrategy[date] = days,
           identities: bool = True) -> st.SearchStrategy[AnyEvent]:
    return raw_events(patient_id, on, identities).map(parse_event)


@st.composite
def histories(draw: st.DrawFn, max_size: int = 40) -> tuple[str, list[AnyEvent]]:
    """One patient's id and a list of valid events (in arbitrary arrival order)."""
    pid = draw(patient_ids)
    return pid, draw(st.lists(events(pid), max_size=max_size))


@st.composite
def timelines(draw: st.DrawFn, max_size: int = 40) -> Timeline:
    pid, evs = draw(histories(max_size))
    return Timeline.build(pid, evs)
