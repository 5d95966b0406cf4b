from __future__ import annotations

import pytest

from monitor.interop import detect_format, parse_payload
from tests.unit.interop._context import CONTEXT


@pytest.mark.parametrize(
    "payload, fmt",
    [
        ('{"resourceType": "Bundle", "type": "collection"}', "fhir"),
        ('{\n  "resourceType": "Observation",\n  "status": "final"\n}', "fhir"),
        ('{"resourceType":"Observation"}\n{"resourceType":"Patient"}\n', "fhir"),  # FHIR bulk NDJSON
        ("MSH|^~\\&|LAB|HOSP|||20250101||ORU^R01|1|P|2.5.1\r", "hl7v2"),
        ("\x0bMSH|^~\\&|LAB|HOSP|||20250101||ORU^R01|1|P|2.5.1\r\x1c\r", "hl7v2"),
        ("FHS|^~\\&|LAB\nBHS|^~\\&\nMSH|^~\\&|LAB\n", "hl7v2"),
        ("\n\n  BHS|^~\\&|LAB\r", "hl7v2"),
        ('{"type":"lab","patient_id":"P1"}\n{"type":"lab"}\n', "ndjson"),
        ('{"type":"lab","patient_id":"P1"}', "ndjson"),
        ('{broken\n{"type":"lab"}\n', "ndjson"),
        ("type,patient_id,analyte,value,unit,effective_at\nlab,P1,upcr,1,g/g,2025-01-01\n", "csv"),
        ("\ufeffpatient_id;analyte;value\n", "csv"),
        (b"\xef\xbb\xbftype,patient_id\n", "csv"),
    ],
)
def test_detects(payload: str | bytes, fmt: str) -> None:
    assert detect_format(payload) == fmt


@pytest.mark.parametrize(
    "payload, why",
    [
        ("", "empty"),
        ("   \n\r\n", "empty"),
        ("hello world", "not recognised"),
        ("a,b,c\n1,2,3", "not recognised"),
        ("[1,2]", "JSON array"),
        ("{broken", "not a JSON object"),
        (b"\xff\xfe\x00garbage", "not recognised"),
        ("MSHX|", "not recognised"),
    ],
)
def test_refuses_with_a_reason(payload: str | bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        detect_format(payload)
    result = parse_payload(payload, context=CONTEXT)
    assert result.events == [] and why in result.rejected[0].reason
    assert result.rejected[0].field == "(payload)"


def test_unknown_explicit_format_is_a_rejection() -> None:
    result = parse_payload("x", fmt="xml", context=CONTEXT)
    assert "unknown format 'xml'" in result.rejected[0].reason


def test_non_text_payload_is_a_rejection() -> None:
    result = parse_payload(12345, context=CONTEXT)  # type: ignore[arg-type]
    assert "bytes or text" in result.rejected[0].reason
