"""Issue 12, item 5: a time written without an offset is meant in IMN_TIMEZONE, in every format
(it was read as UTC whatever the setting). Dates stay calendar dates."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.events import LabResult, MedicationEvent
from monitor.interop import ValidationContext, parse_payload
from tests.unit.interop._context import RECEIVED_AT

BERLIN = ValidationContext(received_at=RECEIVED_AT, zone=ZoneInfo("Europe/Berlin"))
NEW_YORK = ValidationContext(received_at=RECEIVED_AT, zone=ZoneInfo("America/New_York"))

MSH = r"MSH|^~\&|LIS|HOSP|IMN|NEPH|{stamp}||ORU^R01^ORU_R01|C1|P|2.5.1"


def payloads(local: str) -> dict[str, str]:
    """The same albumin at the local wall-clock time `local` ('2025-01-10T08:30:00'), no offset."""
    ts = local.replace("-", "").replace("T", "").replace(":", "")
    fhir = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1751-7"}]},
            "subject": {"reference": "Patient/P1"}, "effectiveDateTime": local,
            "valueQuantity": {"value": 31, "unit": "g/L"}}
    return {
        "ndjson": json.dumps({"type": "lab", "patient_id": "P1", "analyte": "serum_albumin", "value": 31,
                              "unit": "g/L", "effective_at": local}),
        "csv": f"type,patient_id,analyte,value,unit,effective_at\nlab,P1,serum_albumin,31,g/L,{local}\n",
        "fhir": json.dumps(fhir),
        "hl7v2": "\r".join([MSH.format(stamp=ts), "PID|1||P1", "OBR|1|O1|F1|1751-7^Alb^LN",
                            f"OBX|1|NM|1751-7^Albumin^LN||31|g/L|||||F|||{ts}"]),
    }


def lab_of(text: str, context: ValidationContext) -> LabResult:
    result = parse_payload(text, context=context)
    assert result.rejected == [], result.rejected
    (lab,) = [e for e in result.events if isinstance(e, LabResult)]
    return lab


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "fhir", "hl7v2"])
@pytest.mark.parametrize("local, utc", [
    ("2025-01-10T08:30:00", datetime(2025, 1, 10, 7, 30, tzinfo=UTC)),   # CET, +01:00
    ("2025-07-10T08:30:00", datetime(2025, 7, 10, 6, 30, tzinfo=UTC)),   # CEST, +02:00
])
def test_a_time_without_offset_is_read_in_the_configured_zone(fmt: str, local: str, utc: datetime) -> None:
    lab = lab_of(payloads(local)[fmt], BERLIN)
    assert lab.effective_at == utc  # was 08:30 UTC, an hour or two late
    assert lab.effective_at.utcoffset() == ZoneInfo("Europe/Berlin").utcoffset(datetime.fromisoformat(local))


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "fhir", "hl7v2"])
def test_an_explicit_offset_wins_over_the_zone(fmt: str) -> None:
    text = payloads("2025-01-10T08:30:00")[fmt]
    text = {"hl7v2": text.replace("20250110083000", "20250110083000-0500")}.get(
        fmt, text.replace("2025-01-10T08:30:00", "2025-01-10T08:30:00-05:00"))
    assert lab_of(text, BERLIN).effective_at == datetime(2025, 1, 10, 13, 30, tzinfo=UTC)


def test_a_late_evening_time_keeps_its_local_day() -> None:
    # 23:30 in New York is 04:30 UTC the next day: read as UTC, it fell on the wrong day
    lab = lab_of(payloads("2025-01-10T23:30:00")["ndjson"], NEW_YORK)
    assert lab.effective_date == date(2025, 1, 10)
    assert lab.effective_at.astimezone(UTC) == datetime(2025, 1, 11, 4, 30, tzinfo=UTC)


def test_dates_stay_calendar_dates_in_any_zone() -> None:
    text = payloads("2025-01-10T08:30:00")["ndjson"].replace("2025-01-10T08:30:00", "2025-01-10")
    for ctx in (BERLIN, NEW_YORK):
        lab = lab_of(text, ctx)
        assert lab.effective_date == date(2025, 1, 10)
        assert lab.effective_at == datetime(2025, 1, 10, tzinfo=UTC)  # the identity date-only results always had


def test_recorded_at_without_offset_is_read_in_the_zone_too() -> None:
    line = json.dumps({"type": "medication", "patient_id": "P1", "drug": "rituximab", "start": "2025-01-10",
                       "recorded_at": "2025-01-10T09:00:00"})
    (event,) = parse_payload(line, context=BERLIN).events
    assert isinstance(event, MedicationEvent)
    assert event.recorded_at == datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
