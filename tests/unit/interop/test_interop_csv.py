"""CSV with the NDJSON field names as header; empty cells are absent."""

from __future__ import annotations

from monitor.events import LabResult, MedicationEvent
from monitor.interop import parse_payload
from monitor.interop.csv import parse_csv
from tests.unit.interop._context import CONTEXT

HEADER = "type,patient_id,analyte,value,unit,effective_at,drug,dose,frequency,start,end,status"


def test_good_rows_land_and_bad_rows_are_rejected_with_line_and_reason() -> None:
    text = "\n".join(
        [
            HEADER,
            "lab,P1,anti_pla2r,168,RU/mL,2025-01-10,,,,,,",  # 2
            "lab,P1,serum_albumin,2.2,g/dL,2025-01-10,,,,,,final",  # 3
            "",  # 4 blank
            "lab,P1,serum_albumin,abc,g/dL,2025-01-10,,,,,,",  # 5 bad value
            'lab,P1,upcr,"300,mg/mmol,2025-01-10,,,,,,',  # 6 unbalanced quote: only this row
            "medication,P1,,,mg,,cyclosporine,150,bid,2025-01-01,2025-12-31,",  # 7
            "lab,P1,upcr,300,mg/mmol,2025-01-10,,,,,,,surplus",  # 8 too many cells
            "lab,P1,egfr,55,mL/min/1.73m2,2025-13-01,,,,,,",  # 9 bad date
        ]
    )
    result = parse_csv(text)
    assert [type(e) for e in result.events] == [LabResult, LabResult, MedicationEvent]
    by_line = {r.line: r for r in result.rejected}
    assert sorted(by_line) == [5, 6, 8, 9]
    assert by_line[5].field == "value" and by_line[5].value == "abc"
    assert "unreadable CSV row" in by_line[6].reason
    assert "header has 12 columns" in by_line[8].reason
    assert by_line[9].field == "effective_at"
    med = result.events[2]
    assert isinstance(med, MedicationEvent) and med.frequency == "bid" and med.end is not None


def test_type_column_may_be_omitted_and_values_may_carry_a_comparator() -> None:
    text = "patient_id,analyte,value,unit,effective_at\r\nP1,anti_pla2r,<2,RU/mL,2025-08-01\r\n"
    (event,) = parse_csv(text).events
    assert isinstance(event, LabResult) and event.comparator == "<" and event.value == 2


def test_semicolon_exports_and_short_rows() -> None:
    text = "patient_id;analyte;value;unit;effective_at;status\nP1;upcr;1.2;g/g;2025-01-10\n"
    (event,) = parse_csv(text).events
    assert event.status == "final"


def test_unknown_header_is_rejected_once() -> None:
    result = parse_csv("name,age\nJane,57\n")
    (rej,) = result.rejected
    assert rej.line == 1 and rej.field == "(header)" and "known columns" in rej.reason


def test_unknown_filled_column_is_rejected_per_row() -> None:
    text = (
        "patient_id,analyte,value,unit,effective_at,comment\n"
        "P1,upcr,1,g/g,2025-01-10,hi\n"
        "P1,upcr,1,g/g,2025-01-11,\n"
    )
    result = parse_csv(text)
    assert len(result.events) == 1
    assert result.rejected[0].field == "comment" and result.rejected[0].line == 2


def test_example_feed_parses_cleanly(examples) -> None:  # type: ignore[no-untyped-def]
    result = parse_payload((examples / "lab-feed.csv").read_bytes(), context=CONTEXT)
    assert result.format == "csv" and result.rejected == [] and len(result.events) == 8
