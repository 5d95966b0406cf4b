"""Validated events (monitor/events.py): the NDJSON contract of docs/input-contract.md, problems that name field,
value and reason, identities and statuses."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import pytest

from monitor.events import InvalidEvent, LabResult, MedicationEvent, Patient, Problem, parse_event

# the NDJSON contract's example lines (docs/input-contract.md, "NDJSON")
CONTRACT_LINES = """\
{"type":"patient","patient_id":"P1","birth_date":"1968-03-02","sex":"male","weight_kg":72,"height_cm":175}
{"type":"lab","patient_id":"P1","analyte":"anti_pla2r","value":168,"unit":"RU/mL","effective_at":"2025-01-10"}
{"type":"medication","patient_id":"P1","drug":"rituximab","dose":1000,"unit":"mg","route":"iv","start":"2025-02-01"}
{"type":"medication","patient_id":"P1","drug":"cyclosporine","dose":150,"unit":"mg","frequency":"bid","start":"2025-01-01","end":"2025-12-31"}
"""


def lab_raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": "lab", "patient_id": "P1", "analyte": "serum_albumin", "value": 30,
                           "unit": "g/L", "effective_at": "2025-01-10"}
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def med_raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": "medication", "patient_id": "P1", "drug": "rituximab", "dose": 1000,
                           "unit": "mg", "start": "2025-02-01"}
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def problems(raw: Any) -> list[Problem]:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert exc.value.problems
    assert str(exc.value)  # the message joins every problem
    return exc.value.problems


def one_problem(raw: Any) -> Problem:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


def test_contract_examples_validate() -> None:
    events = [parse_event(json.loads(line)) for line in CONTRACT_LINES.splitlines()]
    p, titer, rtx, csa = events
    assert isinstance(p, Patient) and p.birth_date == date(1968, 3, 2) and p.weight_kg == 72
    assert isinstance(titer, LabResult)
    assert titer.value == 168 and titer.unit == "RU/mL"
    assert titer.effective_at == datetime(2025, 1, 10, tzinfo=timezone.utc)
    assert titer.status == "final" and titer.reported_unit is None  # canonical: nothing converted
    assert isinstance(rtx, MedicationEvent) and rtx.frequency == "once" and rtx.dose_mg == 1000
    assert rtx.active_on(date(2025, 2, 1)) and not rtx.active_on(date(2025, 2, 2))
    assert isinstance(csa, MedicationEvent) and csa.frequency == "bid"
    assert csa.active_on(date(2025, 12, 31)) and not csa.active_on(date(2026, 1, 1))


def test_conversion_keeps_the_reported_value() -> None:
    e = parse_event(lab_raw(value=2.5, unit="g/dL"))
    assert isinstance(e, LabResult)
    assert (e.value, e.unit, e.reported_value, e.reported_unit) == (25.0, "g/L", 2.5, "g/dL")


def test_loinc_code_and_datetime_with_offset() -> None:
    e = parse_event(lab_raw(analyte="1751-7", effective_at="2025-01-10T08:30:00+02:00"))
    assert isinstance(e, LabResult) and e.analyte == "serum_albumin"
    assert e.effective_at == datetime(2025, 1, 10, 6, 30, tzinfo=timezone.utc)
    naive = parse_event(lab_raw(effective_at="2025-01-10T08:30:00"))
    assert isinstance(naive, LabResult) and naive.effective_at.tzinfo is not None  # taken as UTC


def test_drug_aliases_and_open_course() -> None:
    e = parse_event(med_raw(drug="Ciclosporin", frequency="bid", dose=100, end=None))
    assert isinstance(e, MedicationEvent) and e.drug == "cyclosporine"
    assert e.active_on(date(2030, 1, 1))  # open end = still active


@pytest.mark.parametrize(("given", "drug"), [
    ("aspirin", "antiplatelet"), ("Acetylsalicylic acid", "antiplatelet"), ("ASA", "antiplatelet"),
    ("acetylsalicylate", "antiplatelet"), ("Clopidogrel", "antiplatelet"), ("plavix", "antiplatelet"),
    ("ticagrelor", "antiplatelet"), ("BRILINTA", "antiplatelet"), ("Brilique", "antiplatelet"),
    ("antiplatelet", "antiplatelet"), ("warfarin", "anticoagulant")])
def test_thromboprophylaxis_names(given: str, drug: str) -> None:
    e = parse_event(med_raw(drug=given, frequency="qd", dose=100))
    assert isinstance(e, MedicationEvent) and e.drug == drug


@pytest.mark.parametrize(("raw", "field", "value", "reason"), [
    (lab_raw(analyte="ferritin"), "analyte", "ferritin", "unknown analyte"),
    (lab_raw(unit="mg/mmol"), "unit", "mg/mmol", "not accepted for serum_albumin"),
    (lab_raw(effective_at="2025-13-10"), "effective_at", "2025-13-10", "month"),
    (lab_raw(effective_at="yesterday"), "effective_at", "yesterday", "datetime"),
    (med_raw(start="2025-02-01", end="2025-01-01"), "end", "2025-01-01", "before start"),
    (lab_raw(colour="red"), "colour", "red", "Extra inputs"),
    (lab_raw(patient_id=None), "patient_id", "(missing)", "required"),
    (lab_raw(patient_id="P 1"), "patient_id", "P 1", "pattern"),
    (lab_raw(value=float("nan")), "value", "NaN", "finite"),
    (lab_raw(value=float("inf")), "value", "Infinity", "finite"),
    (lab_raw(value=300), "value", "300", "plausible range"),
    (lab_raw(status="bogus"), "status", "bogus", "final"),
    (med_raw(drug="paracetamol"), "drug", "paracetamol", "rituximab"),
    (med_raw(unit=None), "unit", "(missing)", "needs its unit"),
    (med_raw(unit="puffs"), "unit", "puffs", "not accepted"),
    (med_raw(frequency="hourly"), "frequency", "hourly", "once"),
])
def test_invalid_input_names_field_value_and_reason(raw: dict[str, Any], field: str, value: str,
                                                    reason: str) -> None:
    p = one_problem(raw)
    assert p.field == field
    assert p.value == value
    assert reason in p.reason
    assert str(p).startswith(f"{field}={value}: ")


def test_nan_from_a_json_line_is_rejected() -> None:
    raw = json.loads('{"type":"lab","patient_id":"P1","analyte":"upcr","value":NaN,"unit":"g/g",'
                     '"effective_at":"2025-01-10"}')
    assert one_problem(raw).field == "value"


def test_several_problems_are_all_reported() -> None:
    found = problems(lab_raw(patient_id=None, colour="red", status="bogus"))
    assert {p.field for p in found} == {"patient_id", "colour", "status"}


@pytest.mark.parametrize("raw", [[1], "text", None, {"type": "observation"}, {}])
def test_not_an_event(raw: Any) -> None:
    assert one_problem(raw).field in ("(line)", "type")


def test_same_source_id_is_the_same_identity_whatever_the_content() -> None:
    a = parse_event(lab_raw(source="lab1", source_id="X1", value=30))
    b = parse_event(lab_raw(source="lab1", source_id="X1", value=33, status="corrected"))
    assert a.identity == b.identity == "lab:lab1:X1"
    assert a.content_hash != b.content_hash
    other_source = parse_event(lab_raw(source="lab2", source_id="X1"))
    assert other_source.identity != a.identity


def test_without_source_id_the_identity_is_the_content() -> None:
    a = parse_event(lab_raw(value=30))
    assert a.identity.startswith("lab:h:")
    assert parse_event(lab_raw(value=30)).identity == a.identity
    # the same fact in another unit is the same fact (identity uses the canonical value)
    assert parse_event(lab_raw(value=3.0, unit="g/dL")).identity == a.identity
    assert parse_event(lab_raw(value=31)).identity != a.identity
    assert parse_event(lab_raw(effective_at="2025-01-11")).identity != a.identity
    assert parse_event(lab_raw(patient_id="P2")).identity != a.identity


def test_content_hash_ignores_recorded_at_only() -> None:
    a = parse_event(lab_raw(recorded_at="2025-01-11T10:00:00Z"))
    b = parse_event(lab_raw(recorded_at="2025-01-12T10:00:00Z"))
    assert a.content_hash == b.content_hash
    assert parse_event(lab_raw(status="preliminary")).content_hash != a.content_hash


def test_medication_identity_without_source_id() -> None:
    a = parse_event(med_raw())
    assert a.identity == parse_event(med_raw()).identity
    assert a.identity != parse_event(med_raw(dose=500)).identity


def test_patient_identity_is_one_per_patient() -> None:
    a = parse_event({"type": "patient", "patient_id": "P1", "weight_kg": 70})
    b = parse_event({"type": "patient", "patient_id": "P1", "weight_kg": 75})
    assert a.identity == b.identity == "patient:P1"
    assert a.content_hash != b.content_hash


@pytest.mark.parametrize(("given", "stored"), [
    ("amended", "corrected"), ("cancelled", "entered-in-error"), ("registered", "preliminary"),
    ("corrected", "corrected"), ("entered-in-error", "entered-in-error"), ("final", "final"),
])
def test_status_aliases(given: str, stored: str) -> None:
    lab_event = parse_event(lab_raw(status=given))
    med_event = parse_event(med_raw(status=given))
    assert isinstance(lab_event, LabResult) and lab_event.status == stored
    assert isinstance(med_event, MedicationEvent) and med_event.status == stored


def test_events_are_immutable() -> None:
    e = parse_event(lab_raw())
    with pytest.raises(Exception):
        e.value = 1.0  # type: ignore[misc]
