"""Drug, dose, dates and frequency of MedicationAdministration / MedicationStatement / MedicationRequest."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from monitor.interop.codemap import CodeMap
from monitor.interop.fhir_refs import Index

Failure = tuple[str, str, str]  # field, value, reason

# timing.code (HL7 GTSAbbreviation) and repeat (frequency, period, periodUnit) -> contract frequency
TIMING_CODES = {"QD": "qd", "BID": "bid", "TID": "tid", "WK": "qw", "QW": "qw"}
REPEATS = {
    (1, 1, "d"): "qd",
    (2, 1, "d"): "bid",
    (3, 1, "d"): "tid",
    (1, 1, "wk"): "qw",
    (1, 7, "d"): "qw",
    (1, 2, "wk"): "q2w",
    (1, 14, "d"): "q2w",
    (1, 4, "wk"): "q4w",
    (1, 28, "d"): "q4w",
}
# UCUM dose units as the event contract spells them
DOSE_UNITS = {"[iu]": "iu", "[iu]/kg": None, "mg/m2": "mg/m2", "mg/(m2)": "mg/m2", "mg/kg": "mg/kg"}


def medication_record(
    res: Any, index: Index, code_map: CodeMap, source: str | None
) -> dict[str, Any] | Failure:
    kind = res.get_resource_type()
    drug = _drug(res, index, code_map, source)
    if isinstance(drug, tuple):
        return drug
    record: dict[str, Any] = {"drug": drug}
    if kind == "MedicationAdministration":
        start = _day(res.effectiveDateTime) or (
            _day(res.effectivePeriod.start) if res.effectivePeriod else None
        )
        if start is None:
            return (
                "effectiveDateTime",
                "",
                "no administration date (effectiveDateTime or effectivePeriod.start)",
            )
        record["start"] = start
        dosage = res.dosage
        if dosage is not None:
            _dose(record, dosage.dose)
            _route(record, dosage.route)
        return _checked(record)
    dosage = (res.dosage if kind == "MedicationStatement" else res.dosageInstruction) or []
    first = dosage[0] if dosage else None
    if kind == "MedicationStatement":
        start = _day(res.effectiveDateTime) or (
            _day(res.effectivePeriod.start) if res.effectivePeriod else None
        )
        end = _day(res.effectivePeriod.end) if res.effectivePeriod else None
        if start is None:
            return "effectivePeriod", "", "no start date (effectiveDateTime or effectivePeriod.start)"
    else:
        bounds = first.timing.repeat.boundsPeriod if first and first.timing and first.timing.repeat else None
        start = (_day(bounds.start) if bounds else None) or _day(res.authoredOn)
        end = _day(bounds.end) if bounds else None
        if start is None:
            return (
                "authoredOn",
                "",
                "no start date (dosageInstruction.timing.repeat.boundsPeriod.start or authoredOn)",
            )
    record["start"] = start
    if end is not None:
        record["end"] = end
    frequency = _frequency(first.timing if first else None)
    if isinstance(frequency, tuple):
        return frequency
    if frequency is None:
        if end is not None or (kind == "MedicationStatement" and res.effectivePeriod is not None):
            return (
                "dosage.timing",
                "",
                "a course over a period needs dosage timing for its frequency (not guessed)",
            )
        frequency = "once"
    record["frequency"] = frequency
    if first is not None:
        qty = next((dr.doseQuantity for dr in first.doseAndRate or [] if dr.doseQuantity is not None), None)
        _dose(record, qty)
        _route(record, first.route)
    return _checked(record)


def _checked(record: dict[str, Any]) -> dict[str, Any] | Failure:
    unit = record.get("unit")
    if unit is None and "dose" in record:
        return "dose.unit", "", "dose quantity has no unit"
    return record


def _drug(res: Any, index: Index, code_map: CodeMap, source: str | None) -> str | Failure:
    concept = res.medicationCodeableConcept
    codings: list[tuple[str, str, str]] = []  # (system, code, display)
    text = ""
    if concept is not None:
        codings = [(c.system or "", c.code or "", c.display or "") for c in concept.coding or []]
        text = concept.text or ""
    elif res.medicationReference is not None:
        target = res.medicationReference.reference or ""
        med = _medication_resource(target, index, res)
        if med is None:
            return "medicationReference", target, "referenced Medication is not in this payload"
        code = med.get("code") if isinstance(med.get("code"), dict) else {}
        codings = [
            (str(c.get("system") or ""), str(c.get("code") or ""), str(c.get("display") or ""))
            for c in code.get("coding") or []
            if isinstance(c, dict)
        ]
        text = str(code.get("text") or "")
    systems = [s for s, _, _ in codings]
    found = code_map.resolve_drug(
        [c for _, c, _ in codings],
        [text, *(d for _, _, d in codings), *(c for _, c, _ in codings)],
        source,
        *systems,
    )
    if found is None:
        shown = text or ", ".join(f"{s}|{c} {d}".strip() for s, c, d in codings)
        return (
            "medication",
            shown[:80],
            (f"unknown drug {shown!r} (not one of the monitored drugs, their aliases or the code map)"),
        )
    return found


def _medication_resource(target: str, index: Index, res: Any) -> dict[str, Any] | None:
    if target.startswith("#"):
        for c in res.contained or []:
            if c.id == target[1:] and c.get_resource_type() == "Medication":
                return c.model_dump(mode="json")
        return None
    med = index.by_url.get(target)
    return med if med is not None and med.get("resourceType") == "Medication" else None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None  # partial dates are too imprecise for a dose history


def _dose(record: dict[str, Any], qty: Any) -> None:
    if qty is None or qty.value is None:
        return
    record["dose"] = float(Decimal(qty.value))
    unit = (qty.code if qty.code else qty.unit) or None
    if unit is not None:
        mapped = DOSE_UNITS.get(unit.strip().lower().replace(" ", ""), unit)
        record["unit"] = mapped if mapped is not None else unit
    else:
        record["unit"] = None


def _route(record: dict[str, Any], concept: Any) -> None:
    if concept is None:
        return
    text = concept.text or next(
        (c.display or c.code for c in concept.coding or [] if c.display or c.code), None
    )
    if text:
        record["route"] = text.strip().lower()[:20]


def _frequency(timing: Any) -> str | None | Failure:
    """The contract's frequency for a FHIR Timing, None when absent, or why it cannot be represented."""
    if timing is None:
        return None
    code = timing.code
    if code is not None:
        for c in [*(x.code for x in code.coding or []), code.text]:
            if c and c.upper() in TIMING_CODES:
                return TIMING_CODES[c.upper()]
    rep = timing.repeat
    if rep is None:
        return (
            None
            if code is None
            else ("dosage.timing.code", str(code.text or ""), "timing code not representable")
        )
    if rep.frequency is None and rep.period is None:
        return "once" if rep.count == 1 else None
    period = Decimal(rep.period) if rep.period is not None else Decimal(1)
    key = (
        rep.frequency or 1,
        int(period) if period == period.to_integral_value() else -1,
        rep.periodUnit or "",
    )
    if key in REPEATS:
        return REPEATS[key]
    shown = f"{rep.frequency or 1} per {rep.period} {rep.periodUnit}"
    return (
        "dosage.timing.repeat",
        shown,
        ("dosing frequency not representable (once, qd, bid, tid, qw, q2w, q4w)"),
    )
