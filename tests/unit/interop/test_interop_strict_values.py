"""Issue 12, items 1-3: input that became a wrong clinical value is refused with its reason.

1. Lax coercions: a boolean, "1_000", numbers with spaces, dates written as numbers.
2. Duplicate JSON keys (the last one silently won).
3. Implausible dates: before 1900, more than a day after receipt, birth dates in the future.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from monitor.events import InvalidEvent, LabResult, MedicationEvent, Patient, parse_event
from monitor.interop import ParseResult, ValidationContext, parse_payload
from monitor.interop.csv import parse_csv
from monitor.interop.fhir import parse_fhir
from monitor.interop.hl7v2 import parse_hl7v2
from monitor.interop.ndjson import parse_ndjson
from tests.unit.interop._context import CONTEXT, RECEIVED_AT

LAB = {"type": "lab", "patient_id": "P1", "analyte": "serum_albumin", "value": 3.1, "unit": "g/dL",
       "effective_at": "2025-01-10"}
MED = {"type": "medication", "patient_id": "P1", "drug": "cyclosporine", "dose": 100, "unit": "mg",
       "frequency": "bid", "start": "2025-01-01"}
PATIENT = {"type": "patient", "patient_id": "P1", "birth_date": "1968-03-02", "sex": "female",
           "weight_kg": 72, "height_cm": 175}


def ndjson(**fields: Any) -> str:
    return json.dumps({**LAB, **fields})


def only_rejection(result: ParseResult):  # type: ignore[no-untyped-def]
    assert result.events == [], result.events
    (rej,) = result.rejected
    return rej


# ------------------------------------------------------------------ 1. lax coercions


def test_boolean_albumin_is_refused_not_stored_as_ten_g_per_l() -> None:
    # the reported case: albumin `true` g/dL became 1.0 g/dL = 10 g/L, a critical alert
    rej = only_rejection(parse_ndjson(ndjson(value=True), CONTEXT))
    assert (rej.field, rej.value) == ("value", "true")
    assert "boolean" in rej.reason and "not a number" in rej.reason


def test_boolean_in_csv_is_refused() -> None:
    text = "type,patient_id,analyte,value,unit,effective_at\nlab,P1,serum_albumin,true,g/dL,2025-01-10\n"
    rej = only_rejection(parse_csv(text, CONTEXT))
    assert (rej.field, rej.value) == ("value", "true") and "not a decimal number" in rej.reason


@pytest.mark.parametrize("raw, field", [
    ({**MED, "dose": True}, "dose"),
    ({**PATIENT, "weight_kg": True}, "weight_kg"),
    ({**PATIENT, "height_cm": False}, "height_cm"),
    ({**LAB, "value": 3, "reported_value": True}, "reported_value"),
])
def test_boolean_is_never_a_number_in_any_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, CONTEXT)
    (problem,) = info.value.problems
    assert problem.field == field and "boolean" in problem.reason


@pytest.mark.parametrize("text", ["1_000", "1 000", "3,5", "0x10", "１２", "٣", "3.1.2", "3 g", "--3", "true"])
def test_numeric_text_must_be_plain_decimal(text: str) -> None:
    # "1_000" was read as 1000 and "１２" as 12 (Python's float() accepts both)
    for raw in ({**LAB, "value": text}, {**MED, "dose": text}, {**PATIENT, "weight_kg": text}):
        with pytest.raises(InvalidEvent, match="not a decimal number"):
            parse_event(raw, CONTEXT)


@pytest.mark.parametrize("text, expected", [("3.1", 31.0), (" 3.1 ", 31.0), ("+3", 30.0), (".5", 5.0), ("3e0", 30.0)])
def test_plain_decimal_text_is_still_read(text: str, expected: float) -> None:
    event = parse_event({**LAB, "value": text}, CONTEXT)
    assert isinstance(event, LabResult) and event.value == pytest.approx(expected)


@pytest.mark.parametrize("field, value", [
    ("effective_at", 1736496000),    # a Unix timestamp: was 2025-01-10
    ("effective_at", 0),             # was 1970-01-01
    ("effective_at", "20250110"),    # HL7 style in a CSV cell: was 1970-08-23 (seconds since 1970)
    ("effective_at", "1736496000"),
    ("effective_at", "2025-W02-5"),  # an ISO week date: read, but no lab writes it
    ("recorded_at", 1736496000.5),
])
def test_lab_times_given_as_numbers_are_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event({**LAB, field: value}, CONTEXT)
    assert info.value.problems[0].field == field
    assert "ISO 8601" in info.value.problems[0].reason


@pytest.mark.parametrize("raw, field", [
    ({**MED, "start": 0}, "start"),
    ({**MED, "start": 20000}, "start"),
    ({**MED, "end": "20251231"}, "end"),
    ({**MED, "start": "2025-01-01T00:00:00"}, "start"),
    ({**PATIENT, "birth_date": 0}, "birth_date"),
    ({**PATIENT, "birth_date": "19680302"}, "birth_date"),
])
def test_dates_given_as_numbers_or_other_text_are_refused(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, CONTEXT)
    assert info.value.problems[0].field == field and "YYYY-MM-DD" in info.value.problems[0].reason


def test_csv_compact_date_is_refused_not_read_as_1970() -> None:
    text = "type,patient_id,analyte,value,unit,effective_at\nlab,P1,serum_albumin,3.1,g/dL,20250110\n"
    rej = only_rejection(parse_csv(text, CONTEXT))
    assert rej.field == "effective_at" and "ISO 8601" in rej.reason


def test_other_fields_keep_their_types() -> None:
    for raw, field in (({**LAB, "patient_id": 12}, "patient_id"), ({**MED, "unit": True}, "unit"),
                       ({**MED, "route": 5}, "route"), ({**PATIENT, "sex": True}, "sex")):
        with pytest.raises(InvalidEvent) as info:
            parse_event(raw, CONTEXT)
        assert info.value.problems[0].field == field


# ------------------------------------------------------------------ 2. duplicate keys


def test_duplicate_patient_id_is_refused_naming_the_key() -> None:
    # {"patient_id":"A","patient_id":"B"} filed the result under B
    line = '{"type":"lab","patient_id":"A","patient_id":"B","analyte":"serum_albumin","value":3.1,' \
           '"unit":"g/dL","effective_at":"2025-01-10"}'
    result = parse_ndjson(line + "\n" + ndjson(), CONTEXT)
    (rej,) = result.rejected
    assert rej.field == "patient_id" and "duplicate key 'patient_id'" in rej.reason and rej.line == 1
    assert [e.patient_id for e in result.events] == ["P1"]  # the good line after it still lands


def test_duplicate_key_deep_inside_an_ndjson_object_is_refused() -> None:
    line = '{"type":"lab","patient_id":"A","analyte":"serum_albumin","value":{"x":{"y":1,"y":2}},' \
           '"unit":"g/dL","effective_at":"2025-01-10"}'
    rej = only_rejection(parse_ndjson(line, CONTEXT))
    assert rej.field == "y" and "duplicate key 'y'" in rej.reason


FHIR_OBS = {
    "resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "1751-7"}]},
    "subject": {"reference": "Patient/A"}, "effectiveDateTime": "2025-01-10T08:00:00Z",
    "valueQuantity": {"value": 3.1, "unit": "g/dL"},
}


def test_fhir_duplicate_key_at_any_level_is_refused() -> None:
    text = json.dumps(FHIR_OBS).replace('"reference": "Patient/A"', '"reference": "Patient/A", "reference": "Patient/B"')
    rej = only_rejection(parse_fhir(text, None, CONTEXT))
    assert rej.field == "reference" and "duplicate key 'reference'" in rej.reason
    bundle = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": FHIR_OBS}]})
    text = bundle.replace('"status": "final"', '"status": "final", "status": "entered-in-error"')
    assert "duplicate key 'status'" in only_rejection(parse_fhir(text, None, CONTEXT)).reason


def test_fhir_bulk_duplicate_key_refuses_only_its_line() -> None:
    good = json.dumps(FHIR_OBS)
    bad = good.replace('"status": "final"', '"status": "final", "status": "final"')
    result = parse_payload(f"{good}\n{bad}\n{good}\n", "fhir", context=CONTEXT)
    assert len(result.events) == 2
    (rej,) = result.rejected
    assert rej.line == 2 and rej.field == "status" and "duplicate key" in rej.reason


# ------------------------------------------------------------------ 3. implausible dates


@pytest.mark.parametrize("when, why", [
    ("0001-01-01", "before 1900"),
    ("1899-12-31T23:59:59Z", "before 1900"),
    ("9999-12-31", "after the payload was received"),
    ("9999-12-31T23:59:59-14:00", "after the payload was received"),
    ((RECEIVED_AT + timedelta(days=1, minutes=1)).isoformat(), "after the payload was received"),
])
def test_lab_times_outside_1900_to_a_day_after_receipt_are_refused(when: str, why: str) -> None:
    rej = only_rejection(parse_ndjson(ndjson(effective_at=when), CONTEXT))
    assert rej.field == "effective_at" and why in rej.reason


def test_lab_times_up_to_a_day_after_receipt_are_read() -> None:
    edge = (RECEIVED_AT + timedelta(days=1)).isoformat()
    for when in ("1900-01-01", edge, RECEIVED_AT.date().isoformat()):
        (event,) = parse_ndjson(ndjson(effective_at=when), CONTEXT).events
        assert isinstance(event, LabResult)


def test_birth_date_in_the_future_is_refused() -> None:
    tomorrow = (RECEIVED_AT + timedelta(days=1)).date().isoformat()
    rej = only_rejection(parse_ndjson(json.dumps({**PATIENT, "birth_date": tomorrow}), CONTEXT))
    assert rej.field == "birth_date" and "birth date cannot lie in the future" in rej.reason
    rej = only_rejection(parse_ndjson(json.dumps({**PATIENT, "birth_date": "1850-01-01"}), CONTEXT))
    assert "before 1900" in rej.reason
    today = parse_event({**PATIENT, "birth_date": RECEIVED_AT.date().isoformat()}, CONTEXT)
    assert isinstance(today, Patient)


@pytest.mark.parametrize("fields, field", [
    ({"start": "0001-01-01", "end": "9999-12-31"}, "start"),
    ({"start": "2025-01-01", "end": "9999-12-31"}, "end"),
    ({"start": (RECEIVED_AT + timedelta(days=3)).date().isoformat()}, "start"),
    ({"recorded_at": "9999-01-01T00:00:00Z"}, "recorded_at"),
])
def test_medication_courses_from_year_1_to_9999_are_refused(fields: dict[str, str], field: str) -> None:
    rej = only_rejection(parse_ndjson(json.dumps({**MED, **fields}), CONTEXT))
    assert rej.field == field


def test_a_planned_course_end_within_five_years_is_read() -> None:
    end = (RECEIVED_AT + timedelta(days=365)).date()
    (event,) = parse_ndjson(json.dumps({**MED, "end": end.isoformat()}), CONTEXT).events
    assert isinstance(event, MedicationEvent) and event.end == end


def test_implausible_dates_are_refused_in_hl7_and_fhir_too() -> None:
    msg = "\r".join([
        r"MSH|^~\&|LIS|HOSP|IMN|NEPH|20250110143000+0100||ORU^R01|C1|P|2.5.1",
        "PID|1||MRN-1||Doe^Jane||99990101|F",
        "OBR|1|ORD-1|F-1|24323-8^Panel^LN|||20250110081500+0100",
        "OBX|1|NM|1751-7^Albumin^LN||22|g/L|||||F|||99991231235959-1400",
        "OBX|2|NM|1751-7^Albumin^LN||22|g/L|||||F|||00010101000000+1400",
    ])
    result = parse_hl7v2(msg, None, CONTEXT)
    assert result.events == []
    assert sorted(r.field for r in result.rejected) == ["birth_date", "effective_at", "effective_at"]
    assert result.acks[0].code == "AE"
    fhir = parse_fhir(json.dumps({**FHIR_OBS, "effectiveDateTime": "9999-12-31"}), None, CONTEXT)
    assert only_rejection(fhir).field == "effective_at"


def test_without_a_context_only_the_lower_bound_applies() -> None:
    # stored or test data re-validated without an ingestion context: no clock in monitor/
    assert parse_event({**LAB, "effective_at": "2099-01-01"}).effective_at.year == 2099
    with pytest.raises(InvalidEvent, match="before 1900"):
        parse_event({**LAB, "effective_at": "0001-01-01"})


def test_the_context_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ValidationContext(received_at=datetime(2025, 1, 1))
    assert ValidationContext(datetime(2025, 1, 1, 23, tzinfo=UTC)).received_day == date(2025, 1, 1)
