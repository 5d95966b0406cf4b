"""NDJSON: good lines land, each bad line is rejected with its line number and reason."""

from __future__ import annotations

import json

from monitor.events import LabResult, MedicationEvent, Patient
from monitor.interop import parse_payload
from monitor.interop.ndjson import parse_ndjson
from tests.unit.interop._context import CONTEXT

GOOD_LAB = {
    "type": "lab",
    "patient_id": "P1",
    "analyte": "anti_pla2r",
    "value": 168,
    "unit": "RU/mL",
    "effective_at": "2025-01-10",
}


def line(**over: object) -> str:
    return json.dumps({**GOOD_LAB, **over})


def test_mixed_file_good_lines_land_and_bad_lines_are_rejected_by_number() -> None:
    text = (
        "\n".join(
            [
                '{"type":"patient","patient_id":"P1","birth_date":"1968-03-02","sex":"male","weight_kg":72}',
                line(),
                "",  # 3: blank, skipped
                "{not json",  # 4
                line(analyte="potassium", unit="zz"),  # 5: two problems, one rejection
                '{"type":"medication","patient_id":"P1","drug":"rituximab","dose":1000,"unit":"mg","start":"2025-02-01"}',
                "[1, 2]",  # 7
                line(unit="mmol/L"),  # 8
            ]
        )
        + "\n"
    )
    result = parse_ndjson(text)
    assert result.format == "ndjson"
    assert [type(e) for e in result.events] == [Patient, LabResult, MedicationEvent]
    by_line = {r.line: r for r in result.rejected}
    assert sorted(by_line) == [4, 5, 7, 8]
    assert by_line[4].field == "(line)" and by_line[4].reason.startswith("invalid JSON: ")
    assert by_line[5].field == "analyte" and by_line[5].value == "potassium"
    assert "unknown analyte" in by_line[5].reason  # the first problem, then every other one
    assert by_line[7].reason == "expected a JSON object"
    assert by_line[8].field == "unit" and "not accepted for anti_pla2r" in by_line[8].reason
    assert by_line[8].raw == line(unit="mmol/L")


def test_units_are_converted_and_the_reported_unit_kept() -> None:
    (event,) = parse_ndjson(line(analyte="upcr", value=300, unit="mg/mmol")).events
    assert isinstance(event, LabResult)
    assert event.unit == "g/g" and abs(event.value - 2.652) < 1e-9
    assert (event.reported_value, event.reported_unit) == (300, "mg/mmol")


def test_missing_fields_are_named_without_dumping_the_record() -> None:
    (rej,) = parse_ndjson('{"type":"lab","patient_id":"P1","analyte":"upcr","value":1}').rejected
    assert rej.field == "unit" and rej.value == "(missing)" and "field required" in rej.reason
    assert "effective_at" in rej.reason


def test_censored_value_text_becomes_comparator_and_number() -> None:
    (event,) = parse_ndjson(line(value="<2")).events
    assert event.comparator == "<" and event.value == 2


def test_crlf_bom_and_trailing_blank_lines() -> None:
    data = ("\ufeff" + line() + "\r\n" + line(value=20) + "\r\n\r\n").encode()
    result = parse_ndjson(data)
    assert len(result.events) == 2 and result.rejected == []


def test_undecodable_bytes_reject_only_their_line() -> None:
    data = line().encode() + b"\n" + b'{"type":"lab","patient_id":"P\xff1"}\n' + line(value=3).encode()
    result = parse_ndjson(data)
    assert len(result.events) == 2
    (rej,) = result.rejected
    assert rej.line == 2 and "UTF-8" in rej.reason and "\\xff" in rej.raw
    rej.raw.encode("utf-8")  # storable


def test_nul_and_lone_surrogate_escapes_are_rejected_not_stored() -> None:
    result = parse_ndjson(line(source="lab\x00x") + "\n" + line(source_id="\ud800"))
    assert result.events == [] and len(result.rejected) == 2
    assert all("NUL" in r.reason for r in result.rejected)
    for r in result.rejected:
        r.raw.encode("utf-8")


def test_pathological_json_is_rejected_not_raised() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    huge = '{"type":"lab","value":' + "9" * 5000 + "}"
    result = parse_payload(
        deep + "\n" + huge + "\n" + line(value=float("nan")).replace("NaN", "NaN"), "ndjson", context=CONTEXT
    )
    assert result.events == []
    assert [r.line for r in result.rejected] == [1, 2, 3]
    assert all(r.reason for r in result.rejected)


def test_a_very_long_line_is_truncated_in_raw() -> None:
    (rej,) = parse_ndjson("x" * 100_000).rejected
    assert len(rej.raw) <= 2048 and "100000 chars" in rej.raw


def test_example_feed_parses_cleanly(examples) -> None:  # type: ignore[no-untyped-def]
    result = parse_payload((examples / "lab-feed.ndjson").read_bytes(), context=CONTEXT)
    assert result.format == "ndjson" and result.rejected == [] and len(result.events) == 12
