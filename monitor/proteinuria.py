"""The proteinuria series the rules read (g/d), and the one convention for a UPCR in mg/mmol.

docs/clinical-rules.md, "Series the rules read": a 24-hour urine protein (g/d) when one was measured
that day, otherwise the urine protein/creatinine ratio (UPCR) as an estimate of g/d.

The mg/mmol convention (decided 2026-11-30; the one place it lives):
- A mass ratio counts as it is: 1 g/g (= 1000 mg/g) ~ 1 g/d, since an adult excretes about 1 g of
  creatinine a day.
- A molar ratio in mg/mmol is read by KDIGO's own pairing of the two units, mg/mmol / 100 ~ g/d:
  KDIGO 2021 (ch.3) and KDIGO 2012 (ch.7) give every UPCR threshold in both units as 30 mg/mmol with
  0.3 g/g and 350 mg/mmol with 3.5 g/g. The exact molar factor (1 mg/mmol = 8.84 mg/g, creatinine
  113.12 g/mol) would put the nephrotic boundary at 396 mg/mmol and complete remission below 34 mg/mmol,
  where no clinician reading mg/mmol expects them, and would judge the same patient differently
  depending on the lab's unit. The ~13% between the two readings is well inside the scatter of a spot
  ratio against a 24-hour collection.
- What is stored does not change: the result keeps the value and unit the lab reported
  (LabResult.reported_value / reported_unit) beside its exact g/g conversion (monitor.analytes), so a
  different convention later needs no data migration. Only the series the rules read uses the
  estimate, and evidence shows both: "UPCR 372 mg/mmol (~3.72 g/d)".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from operator import attrgetter

from monitor.analytes import normalise_unit
from monitor.events import LabResult

# KDIGO 2012/2021 pair 30 mg/mmol with 0.3 g/g and 350 mg/mmol with 3.5 g/g: mg/mmol / 100 ~ g/d
KDIGO_MG_PER_MMOL_PER_G_PER_DAY = 100.0
# reported molar-ratio units and their factor to mg/mmol
_MOLAR_UNITS_TO_MG_PER_MMOL = {"mg/mmol": 1.0, "g/mmol": 1000.0}
# the unit of an estimate in the series (a UPCR's own canonical unit is g/g)
ESTIMATE_UNIT = "g/d"
_DIGITS = 6  # as events.py rounds a converted value: no float noise in 0.35 g/mmol -> 3.5 g/d
_effective_at = attrgetter("effective_at")
_new = object.__new__
_set = object.__setattr__
_CHANGED = frozenset({"value", "unit"})
_instant_and_analyte = attrgetter("effective_at", "analyte")


@lru_cache(maxsize=256)
def _to_mg_per_mmol(reported_unit: str) -> float | None:
    # a lab's few spellings, normalised once each (normalise_unit was most of a cold assess())
    return _MOLAR_UNITS_TO_MG_PER_MMOL.get(normalise_unit(reported_unit))


def molar_ratio(r: LabResult) -> float | None:
    """The reported UPCR in mg/mmol, when the lab reported a molar ratio; else None."""
    if r.analyte != "upcr" or r.reported_value is None or r.reported_unit is None:
        return None
    factor = _to_mg_per_mmol(r.reported_unit)
    return None if factor is None else r.reported_value * factor


def estimate(r: LabResult) -> LabResult:
    """The result as the proteinuria series reads it: a UPCR reported in mg/mmol becomes its KDIGO
    estimate in g/d (same identity, dates, status, comparator and reported value; value and unit are
    the estimate's); every other result is returned as it is."""
    mg_per_mmol = molar_ratio(r)
    if mg_per_mmol is None:
        return r
    value = round(mg_per_mmol / KDIGO_MG_PER_MMOL_PER_G_PER_DAY, _DIGITS)
    # built as construct_trusted builds events (no validation: every field is the stored result's,
    # already validated), copying the stored result's memos: its identity (evidence traces to it;
    # a hash identity covers the value, so it must not be recomputed from the estimate) and its date.
    # One per mg/mmol UPCR of every timeline: the field-by-field path was most of a cold assess().
    derived = _new(LabResult)
    _set(derived, "__dict__", {**r.__dict__, "value": value, "unit": ESTIMATE_UNIT, "identity": r.identity})
    _set(derived, "__pydantic_fields_set__", r.__pydantic_fields_set__ | _CHANGED)
    _set(derived, "__pydantic_extra__", None)
    _set(derived, "__pydantic_private__", None)
    return derived


def is_estimate(r: LabResult) -> bool:
    """An element of the series that is a KDIGO estimate of a mg/mmol UPCR (see `estimate`)."""
    return r.analyte == "upcr" and r.unit == ESTIMATE_UNIT


def proteinuria_series(collections: Sequence[LabResult], upcr: Sequence[LabResult]) -> tuple[LabResult, ...]:
    """24-hour collections, and UPCR (estimates) on days without one, in clinical order.

    Both inputs are in clinical order (effective_at, analyte, identity); the merge keeps it."""
    if collections:
        # date ordinals, mapped in C (a datetime's ordinal is its own date's)
        taken = set(map(date.toordinal, map(_effective_at, collections)))
        upcr = [r for r, d in zip(upcr, map(date.toordinal, map(_effective_at, upcr))) if d not in taken]
    ratios = tuple(map(estimate, upcr))
    if not collections or not ratios:
        return tuple(collections) or ratios
    # A stable sort of the union by (effective_at, analyte) gives exactly their order in the
    # timeline: values of the two series never tie (the analytes differ), and within one series
    # stability keeps its order. Timsort merges the two runs.
    return tuple(sorted((*collections, *ratios), key=_instant_and_analyte))
