"""Issue 12, items 6 and 8: no payload vanishes, and no depth of nesting crashes a parser.

Item 6 generalised: parse_payload (the one place that enforces it) rejects, with a reason, every
payload that yields neither an event nor a rejection. Item 8: deeply nested JSON is quarantined
with its reason at every depth (RecursionError is no ValueError, and escaped some handlers).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.interop import detect_format, parse_payload
from monitor.interop.fhir import parse_fhir
from monitor.interop.ndjson import parse_ndjson
from tests.unit.interop._context import CONTEXT

FHIR_OBS = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1751-7"}]},
            "subject": {"reference": "Patient/P1"}, "effectiveDateTime": "2025-01-10T08:00:00Z",
            "valueQuantity": {"value": 31, "unit": "g/L"}}


@pytest.mark.parametrize("payload, fmt", [
    ("type,patient_id,analyte,value,unit,effective_at\n", "csv"),            # a header without rows
    ("type,patient_id,analyte,value,unit,effective_at\n\n\n", "auto"),
    (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}), "auto"),
    (json.dumps({"resourceType": "Bundle", "type": "collection",
                 "entry": [{"resource": {"resourceType": "Practitioner", "id": "x"}}]}), "fhir"),
    (json.dumps({"resourceType": "Bundle", "type": "transaction-response",
                 "entry": [{"response": {"status": "201 Created"}}]}), "fhir"),
    ("MSH|^~\\&|LIS|HOSP|IMN|NEPH|20250110143000+0100||ORU^R01|C1|P|2.5.1", "auto"),
    ("\ufeff \n\t\n", "ndjson"),
])
def test_a_payload_that_yields_nothing_is_rejected_with_a_reason(payload: str, fmt: str) -> None:
    result = parse_payload(payload, fmt, context=CONTEXT)
    assert result.events == [] and len(result.rejected) == 1
    assert result.rejected[0].reason.strip() and result.rejected[0].field in ("(payload)", "MSH")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)),
       st.sampled_from(["auto", "ndjson", "csv", "hl7v2", "fhir"]))
def test_parse_payload_never_lets_a_payload_vanish(data: bytes | str, fmt: str) -> None:
    result = parse_payload(data, fmt, context=CONTEXT)
    assert result.events or result.rejected


DEPTHS = [1, 10, 100, 400, 800, 950, 990, 995, 999, 1000, 1001, 1500, 3000, 10_000, 100_000]


def nested(depth: int, kind: str) -> str:
    return ('{"a":' * depth + "1" + "}" * depth) if kind == "object" else ("[" * depth + "1" + "]" * depth)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("kind", ["object", "array"])
def test_nested_json_never_crashes_at_any_depth(depth: int, kind: str) -> None:
    deep = nested(depth, kind)
    cases = [
        (deep, "auto"),                                                            # the whole payload
        ('{"type":"lab","patient_id":"P1","value":' + deep + "}", "auto"),        # inside an NDJSON line
        ('{"type":"lab","patient_id":"P1","source":' + deep + "}", "ndjson"),
        (json.dumps({**FHIR_OBS, "note": "x"}).replace('"x"', deep), "fhir"),     # inside a FHIR resource
        (json.dumps({**FHIR_OBS, "contained": "x"}).replace('"x"', deep), "auto"),
    ]
    for payload, fmt in cases:
        result = parse_payload(payload, fmt, context=CONTEXT)
        assert result.rejected, (depth, kind, payload[:60])
        assert all(r.reason.strip() and "parser error" not in r.reason for r in result.rejected)
    # the format parsers themselves (parse_payload's last-resort catch would hide a crash)
    parse_ndjson(cases[1][0], CONTEXT)
    parse_fhir(cases[3][0], None, CONTEXT)


def test_deep_json_is_quarantined_with_its_reason_not_unknown_format() -> None:
    # `imn-monitor ingest` said "unknown format 'auto'": detection now says why
    deep = nested(100_000, "object")
    with pytest.raises(ValueError, match="nested too deeply"):
        detect_format(deep)
    (rej,) = parse_payload(deep, context=CONTEXT).rejected
    assert "nested too deeply" in rej.reason
    # and a deep first line followed by good NDJSON is NDJSON whose first line is refused
    good = json.dumps({"type": "patient", "patient_id": "P1", "sex": "female"})
    result = parse_payload(deep + "\n" + good + "\n", context=CONTEXT)
    assert result.format == "ndjson" and len(result.events) == 1
    assert "nested too deeply" in result.rejected[0].reason
