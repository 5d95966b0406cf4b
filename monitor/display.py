"""How values are shown to people: at the precision a laboratory reports, and never on the other side
of a threshold than the value itself (docs/clinical-rules.md, "Display precision").

Stored values, evidence values and JSON keep full precision; only text is rounded. Every place that
shows a value to a person (rule messages through monitor.rules._common, risk reasons, the CLI, the
page's templates, chart labels) goes through this module.

- Precision: each analyte's `decimals` in the catalogue (monitor.analytes), e.g. creatinine 80 umol/L,
  UPCR 1.25 g/g, CsA trough 98 ng/mL, tacrolimus 5.4 ng/mL; derived quantities by their unit
  (percentages whole, a titer ratio to one decimal).
- Thresholds: a rounded value must not cross, or land on, a threshold the value is judged against: a
  CsA trough of 99.95 ng/mL is "99.95 ng/mL", not "100 ng/mL", in an alert that says "below 100". So a
  value gets as many more decimals as it takes to stay on its own side of every limit given, and of
  every decision limit the monitor applies to that analyte (decision_limits: the constants of
  remission, risk and trends, and each rule module's DISPLAY_LIMITS).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from monitor.analytes import ANALYTES, normalise_unit
from monitor.events import LabResult
from monitor.proteinuria import is_estimate

# canonical units are stored in ASCII; people read these spellings
UNIT_LABELS: Mapping[str, str] = {
    "umol/L": "\u00b5mol/L",
    "mL/min/1.73m2": "mL/min/1.73 m\u00b2",
    "cells/uL": "cells/\u00b5L",
    "10^9/L": "\u00d710\u2079/L",
}
# decimals of derived quantities (evidence of kind "derived"), by unit
_DERIVED_DECIMALS: Mapping[str, int] = {"%": 0, "ratio": 1, "d": 0, "g": 1, "g/d": 2}
_DEFAULT_DECIMALS = 2
# a value is never rounded further than this many extra decimals to keep it beside its threshold
_MAX_EXTRA_DECIMALS = 6
APPROX = "\u2248"


def unit_label(unit: str | None) -> str:
    return UNIT_LABELS.get(unit or "", unit or "")


@cache  # a handful of (name, unit) pairs, asked for every value of every message
def decimals_for(name: str | None, unit: str | None = None) -> int:
    """The decimals a value of this analyte (or derived quantity, by its unit) is shown with."""
    spec = ANALYTES.get(name or "")
    if spec is not None and (unit is None or unit == spec.canonical_unit):
        return spec.decimals
    if unit in _DERIVED_DECIMALS:
        return _DERIVED_DECIMALS[unit]  # type: ignore[index]
    same_unit = next((a for a in ANALYTES.values() if a.canonical_unit == unit), None)
    return same_unit.decimals if same_unit is not None else _DEFAULT_DECIMALS


def _side(value: float, limit: float) -> int:
    return (value > limit) - (value < limit)


def number(value: float, decimals: int, limits: Iterable[float] = ()) -> str:
    """`value` rounded to `decimals` (trailing zeros dropped), with more decimals where rounding would
    move it onto or across one of `limits` (99.95 with limit 100: "99.95", not "100")."""
    if not math.isfinite(value):
        return str(value)
    decimals = max(decimals, 0)
    # rounding to d decimals moves a value by at most half a unit of the last decimal, so only a
    # limit that close can be reached or crossed: the usual case is decided without the loop (this
    # runs for every value of every message, every night)
    reach = _REACH[decimals] if decimals < len(_REACH) else 0.5 * 10.0 ** -decimals
    near = [b for b in limits if -reach <= value - b <= reach]
    if not near:
        return _plain(value, decimals)  # "%.Nf" rounds exactly as round(value, N) does
    bounds = tuple(near)
    for d in range(decimals, decimals + _MAX_EXTRA_DECIMALS + 1):
        rounded = round(value, d)
        if all(_side(rounded, b) == _side(value, b) for b in bounds):
            return _plain(rounded, d)
    return f"{value:.12g}"  # within 1e-6 of a limit: every digit that matters


_FIXED = tuple(f"%.{d}f" for d in range(16))
# half a unit of the last decimal shown (and a hair more: a float at exactly half may round either way)
_REACH = tuple(0.5 * 10.0 ** -d * (1 + 1e-9) for d in range(10))


def _plain(value: float, decimals: int) -> str:
    text = _FIXED[decimals] % value if decimals < len(_FIXED) else f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@cache
def _registry() -> dict[str, frozenset[float]]:
    """Every decision limit of the monitor, by analyte key or derived quantity name.

    Imported here, not at module level: the rules import this module (through rules._common)."""
    from monitor import remission, risk, trends
    from monitor.rules import RULES

    proteinuria = (remission.COMPLETE_REMISSION_G_PER_DAY, remission.NEPHROTIC_G_PER_DAY,
                   risk.HIGH_RISK_PROTEINURIA_ABOVE_G_PER_DAY)
    limits: dict[str, set[float]] = {
        "proteinuria_24h": set(proteinuria),
        "upcr": set(proteinuria),
        "serum_albumin": {remission.ALBUMIN_LOWER_NORMAL_G_L, risk.LOW_RISK_ALBUMIN_ABOVE_G_L,
                          risk.HIGH_RISK_ALBUMIN_BELOW_G_L},
        "anti_pla2r": {trends.ANTI_PLA2R_COMPLETE_REMISSION_BELOW_RU_ML,
                       trends.ANTI_PLA2R_NEGATIVE_BELOW_RU_ML, trends.ANTI_PLA2R_POSITIVE_FROM_RU_ML,
                       risk.HIGH_RISK_PLA2R_ABOVE_RU_ML, risk.VERY_HIGH_ACTIVITY_PLA2R_ABOVE_RU_ML},
    }
    for key, spec in ANALYTES.items():
        if spec.equation is not None:
            limits.setdefault(key, set()).add(risk.NORMAL_EGFR_MIN)
    for rule in RULES:
        for name, values in getattr(rule, "DISPLAY_LIMITS", {}).items():
            limits.setdefault(name, set()).update(values)
    return {k: frozenset(v) for k, v in limits.items()}


@cache
def decision_limits(name: str | None) -> frozenset[float]:
    """The thresholds the monitor judges this analyte (or derived quantity) against anywhere."""
    return _registry().get(name or "", frozenset())


def value_text(value: float, name: str | None, unit: str | None = None, limits: Iterable[float] = ()) -> str:
    """The number alone, at the precision of `name` (an analyte key or a derived quantity's name), kept
    on its side of `limits` and of every decision limit of `name`."""
    return number(value, decimals_for(name, unit), (*limits, *decision_limits(name)))


@cache
def _converted(reported_unit: str, unit: str | None) -> bool:
    """The reported unit is another unit, not another spelling of the same one ("\u00b5mol/L" is
    stored as umol/L with the lab's spelling kept): only then is the reported value worth showing."""
    return normalise_unit(reported_unit) != normalise_unit(unit or "")


def _reported(r: LabResult) -> str:
    # the value as the lab reported it: its own number, as sent
    return f"{r.reported_value:g} {unit_label(r.reported_unit)}"


def lab_text(r: LabResult, limits: Iterable[float] = ()) -> str:
    """A result as people read it: comparator, value and unit, and the reported value when it was
    converted ("99.8 ng/mL (83 nmol/L)"); a UPCR in mg/mmol in the proteinuria series as its reported
    value with the estimate ("372 mg/mmol (~3.72 g/d)", docs/clinical-rules.md)."""
    bounds = tuple(limits)
    comparator = r.comparator or ""
    if is_estimate(r) and r.reported_value is not None:
        estimate = number(r.value, decimals_for("proteinuria_24h"), (*bounds, *decision_limits("upcr")))
        return f"{comparator}{_reported(r)} ({APPROX} {comparator}{estimate} g/d)"
    text = f"{comparator}{value_text(r.value, r.analyte, r.unit, bounds)} {unit_label(r.unit)}"
    if r.reported_value is not None and r.reported_unit is not None and _converted(r.reported_unit, r.unit):
        text += f" ({_reported(r)})"
    equation = ANALYTES[r.analyte].equation if r.analyte in ANALYTES else None
    if equation is not None and r.analyte != "egfr":
        text += f" ({equation})"  # another equation than the monitor's own CKD-EPI 2021: say which
    return text


def proteinuria_text(r: LabResult, limits: Iterable[float] = ()) -> str:
    """A value of the proteinuria series with what it is: "4.2 g/d (24-h urine)", "1.25 g/d (UPCR in
    g/g, taken as g/d)", "UPCR 372 mg/mmol (~3.72 g/d)"."""
    if is_estimate(r):
        return f"UPCR {lab_text(r, limits)}"
    shown = f"{r.comparator or ''}{value_text(r.value, r.analyte, r.unit, limits)}"
    if r.analyte == "proteinuria_24h":
        return f"{shown} g/d (24-h urine)"
    return f"{shown} g/d (UPCR in {unit_label(r.unit)}, taken as g/d)"


# ------------------------------------------------------------------ stored dicts (evidence, summaries)


def evidence_number(e: Mapping[str, Any]) -> str:
    """The value cell of an evidence item (the contract's dict), at its precision."""
    value = e.get("value")
    if value is None:
        return ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    name = e.get("analyte") or e.get("derived") or e.get("medication")
    if e.get("medication") is not None:
        return f"{value:g}"  # a dose, as prescribed
    if e.get("analyte") == "upcr" and e.get("unit") == "g/d":  # a KDIGO estimate (monitor.proteinuria)
        return number(float(value), decimals_for("proteinuria_24h"), decision_limits("upcr"))
    return value_text(float(value), name, e.get("unit"))


def evidence_unit(e: Mapping[str, Any]) -> str:
    """The unit cell of an evidence item: the unit, with the reported value when it was converted."""
    unit = unit_label(e.get("unit"))
    reported = e.get("reported")
    if e.get("analyte") == "upcr" and e.get("unit") == "g/d" and reported:
        return f"{unit} ({APPROX}, from {reported})"
    if reported and _converted(str(reported).partition(" ")[2], e.get("unit")):
        return f"{unit} ({reported})"
    return unit


def latest_text(key: str, item: Mapping[str, Any]) -> str:
    """A summary's latest value ({"value", "unit", "reported_value"?, "reported_unit"?}) as text."""
    value = item.get("value")
    if not isinstance(value, (int, float)):
        return ""
    comparator = item.get("comparator") or ""
    text = f"{comparator}{value_text(float(value), key, item.get('unit'))} {unit_label(item.get('unit'))}"
    rv, ru = item.get("reported_value"), item.get("reported_unit")
    if rv is not None and ru and _converted(ru, item.get("unit")):
        text += f" ({rv:g} {unit_label(ru)})"
    if item.get("estimate_g_per_day") is not None:
        estimate = number(float(item["estimate_g_per_day"]), decimals_for("proteinuria_24h"),
                          decision_limits("upcr"))
        text = f"{comparator}{rv:g} {unit_label(ru)} ({APPROX} {comparator}{estimate} g/d)"
    if item.get("equation") and item.get("analyte", key) != "egfr":
        text += f" ({item['equation']})"  # another equation than the monitor's own CKD-EPI 2021
    return text


def immunological_text(item: Mapping[str, Any] | None) -> str:
    """A summary's immunological state as text: "positive (35 RU/mL on 2025-08-20)"."""
    if not item:
        return "no anti-PLA2R result"
    titer = latest_text("anti_pla2r", item)
    on = item.get("date") or str(item.get("effective_at"))[:10]
    return f"{item.get('state') or 'indeterminate'} ({titer} on {on})"
