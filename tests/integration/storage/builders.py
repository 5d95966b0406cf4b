"""Small builders for storage tests (synthetic data only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.events import LabResult, MedicationEvent, Patient, parse_event
from monitor.findings import Evidence, Finding

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def lab(pid: str = "P1", analyte: str = "anti_pla2r", value: float = 168, unit: str = "RU/mL",
        at: str = "2025-01-10", **kw: Any) -> LabResult:
    ev = parse_event({"type": "lab", "patient_id": pid, "analyte": analyte, "value": value, "unit": unit,
                      "effective_at": at, **kw})
    assert isinstance(ev, LabResult)
    return ev


def med(pid: str = "P1", drug: str = "rituximab", start: str = "2025-02-01", **kw: Any) -> MedicationEvent:
    raw = {"type": "medication", "patient_id": pid, "drug": drug, "dose": 1000, "unit": "mg", "route": "iv",
           "start": start, **kw}
    ev = parse_event(raw)
    assert isinstance(ev, MedicationEvent)
    return ev


def patient(pid: str = "P1", **kw: Any) -> Patient:
    ev = parse_event({"type": "patient", "patient_id": pid, "birth_date": "1968-03-02", "sex": "male", **kw})
    assert isinstance(ev, Patient)
    return ev


def finding(pid: str = "P1", rule: str = "titer_rising", episode: str = "e1", severity: str = "warning",
            message: str = "anti-PLA2R rose from 20 to 60 RU/mL", value: float = 60.0) -> Finding:
    ev = (Evidence("lab", "anti_pla2r", value, "RU/mL", "2025-05-01T00:00:00+00:00", "lab:h:x"),)
    return Finding(pid, rule, episode, severity, message, ev, "KDIGO 2021")  # type: ignore[arg-type]
