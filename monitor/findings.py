"""What rules return: findings with their evidence, ready to become alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from monitor.events import LabResult, MedicationEvent
from monitor.severity import SEVERITY_RANK, Severity

__all__ = ["SEVERITY_RANK", "Evidence", "Finding", "Severity"]  # the severities: monitor.severity
_object_new = object.__new__
_object_setattr = object.__setattr__


@dataclass(frozen=True)
class Evidence:
    """One result or dose behind a finding, exactly as the rule read it (canonical unit)."""

    kind: Literal["lab", "medication", "derived"]
    name: str  # analyte key, drug, or the derived quantity's name
    value: float | None
    unit: str | None
    effective_at: str  # ISO date or date-time
    event_id: str | None = None  # identity of the stored event, for tracing
    reported: str | None = None  # the value as the lab reported it, when converted
    note: str | None = None

    @classmethod
    def _build(cls, kind: Literal["lab", "medication", "derived"], name: str, value: float | None,
               unit: str | None, effective_at: str, event_id: str | None, reported: str | None,
               note: str | None) -> Evidence:
        """cls(kind, name, ...) with every field given: the same instance (fields in the same order),
        built with one __dict__ assignment. A frozen dataclass's __init__ sets each of the eight
        fields through object.__setattr__, and assess() builds about ten Evidence per patient."""
        evidence = _object_new(cls)
        _object_setattr(evidence, "__dict__", {
            "kind": kind, "name": name, "value": value, "unit": unit, "effective_at": effective_at,
            "event_id": event_id, "reported": reported, "note": note})
        return evidence

    @classmethod
    def of_lab(cls, r: LabResult, note: str | None = None) -> Evidence:
        reported = None
        if r.reported_unit is not None and r.reported_value is not None:
            reported = f"{r.reported_value:g} {r.reported_unit}"
        value = r.value
        if r.comparator is not None:
            note = f"{r.comparator}{value:g}" + (f"; {note}" if note else "")
        return cls._build("lab", r.analyte, value, r.unit, r.effective_at.isoformat(), r.identity,
                          reported, note)

    @classmethod
    def of_medication(cls, m: MedicationEvent, note: str | None = None) -> Evidence:
        span = m.start.isoformat() if m.end is None or m.frequency == "once" else f"{m.start}..{m.end}"
        return cls._build("medication", m.drug, m.dose, m.unit, m.start.isoformat(), m.identity,
                          None, note or (f"{m.frequency} {span}" if m.frequency != "once" else None))

    @classmethod
    def derived(cls, name: str, value: float, unit: str, on: date | datetime, note: str) -> Evidence:
        return cls._build("derived", name, round(value, 3), unit, on.isoformat(), None, None, note)

    def as_dict(self) -> dict[str, object]:
        """The contract's evidence item: {analyte|medication, value, unit, effective_at, ...}."""
        key = {"lab": "analyte", "medication": "medication", "derived": "derived"}[self.kind]
        out: dict[str, object] = {key: self.name, "value": self.value, "unit": self.unit,
                                  "effective_at": self.effective_at}
        for k in ("event_id", "reported", "note"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out


@dataclass(frozen=True)
class Finding:
    """A rule's conclusion about one patient on one date.

    `fingerprint` = patient + rule + episode: the same condition found again keeps its fingerprint,
    so reconciliation updates one alert instead of raising a duplicate.
    """

    patient_id: str
    rule: str
    episode: str
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...]
    reference: str

    @property
    def fingerprint(self) -> str:
        return f"{self.patient_id}/{self.rule}/{self.episode}"
