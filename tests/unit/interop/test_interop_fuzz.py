"""Property tests: no input crashes a parser; every rejection explains itself and can be stored.

The parsers are called directly (not only through parse_payload, whose last-resort catch would hide
a parser bug), and a rejection carrying "parser error" counts as a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.interop import CodeMap, ParseResult, Rejected, parse_payload
from monitor.interop.csv import parse_csv
from monitor.interop.fhir import parse_fhir
from monitor.interop.hl7v2 import ack_for, parse_hl7v2
from monitor.interop.ndjson import parse_ndjson
from tests.unit.interop._context import CONTEXT

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CODE_MAP = CodeMap.from_toml((EXAMPLES / "codemap.toml").read_text())
HL7 = (EXAMPLES / "oru_r01_v251.hl7").read_text()
FHIR = (EXAMPLES / "bundle_r4.json").read_text()
NDJSON = (EXAMPLES / "lab-feed.ndjson").read_text()
CSV = (EXAMPLES / "lab-feed.csv").read_text()

PARSERS: dict[str, Callable[[Any], ParseResult]] = {
    "ndjson": parse_ndjson,
    "csv": parse_csv,
    "hl7v2": lambda d: parse_hl7v2(d, CODE_MAP),
    "fhir": lambda d: parse_fhir(d, CODE_MAP),
}
# IMN_FUZZ_EXAMPLES=5000 for a long campaign; the default keeps the unit suite fast
FUZZ = settings(
    max_examples=int(os.environ.get("IMN_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    for r in result.rejected:
        assert isinstance(r, Rejected)
        assert r.reason.strip(), r
        assert "parser error" not in r.reason, r
        for text in (r.field, r.value, r.reason, r.raw):
            text.encode("utf-8")  # no lone surrogates
            assert "\x00" not in text
        assert len(r.raw) <= 2048
    for e in result.events:
        e.model_dump_json()  # every event serialises
    for ack in result.acks:
        assert ack.code in ("AA", "AE", "AR")
        ack_for(ack).encode("utf-8")


def run_all(data: bytes | str) -> None:
    check(parse_payload(data, code_map=CODE_MAP, context=CONTEXT))
    for parser in PARSERS.values():
        check(parser(data))


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    run_all(data)


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(data: str) -> None:
    run_all(data)


# characters that matter to the formats: delimiters, framing, quotes, braces, line ends, odd bytes
SPECIAL = st.sampled_from(
    list('|^~\\&\r\n\x0b\x1c,;"{}[]:<>=.-0123456789 \t\x00\ud800é')
    + ["MSH|^~\\&|", "OBX|1|NM|", "|F|", "SN", "\\X41\\", '"resourceType"', "null", "1e999", "NaN", "2.5.1"]
)


@st.composite
def mutated(draw: st.DrawFn, source: str) -> str:
    text = source
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = draw(st.one_of(SPECIAL, st.text(max_size=8)))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "replace":
            text = text[:i] + piece + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


@FUZZ
@given(mutated(HL7))
def test_mutated_hl7(data: str) -> None:
    check(parse_hl7v2(data, CODE_MAP))
    check(parse_payload(data, code_map=CODE_MAP, context=CONTEXT))


@FUZZ
@given(mutated(FHIR))
def test_mutated_fhir_text(data: str) -> None:
    check(parse_fhir(data, CODE_MAP))
    check(parse_payload(data.encode("utf-8", "surrogatepass"), code_map=CODE_MAP, context=CONTEXT))


@FUZZ
@given(mutated(NDJSON))
def test_mutated_ndjson(data: str) -> None:
    check(parse_ndjson(data))
    check(parse_payload(data, code_map=CODE_MAP, context=CONTEXT))


@FUZZ
@given(mutated(CSV))
def test_mutated_csv(data: str) -> None:
    check(parse_csv(data))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "2025-01-10",
            "2025-13-40",
            "final",
            "entered-in-error",
            "Patient/x",
            "#p",
            "urn:uuid:1",
            "http://loinc.org",
            "73737-9",
            "mg",
            "<",
            "RU/mL",
            "Observation",
            "Patient",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(st.data())
def test_structurally_mutated_fhir(data: st.DataObject) -> None:
    doc = json.loads(FHIR)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(JSON_VALUES)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    check(parse_fhir(json.dumps(doc), CODE_MAP))


FIELD_VALUES = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.sampled_from(
        [
            "lab",
            "patient",
            "medication",
            "P1",
            "anti_pla2r",
            "73737-9",
            "<5",
            "RU/mL",
            "2025-01-10",
            "bid",
            "rituximab",
            "mg",
            "corrected",
        ]
    ),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "patient_id",
                "analyte",
                "value",
                "unit",
                "effective_at",
                "drug",
                "dose",
                "frequency",
                "start",
                "end",
                "status",
                "comparator",
                "source",
                "source_id",
                "birth_date",
                "sex",
                "weight_kg",
                "extra",
            ]
        ),
        FIELD_VALUES,
        max_size=10,
    )
)
def test_ndjson_records_with_arbitrary_fields(record: dict[str, Any]) -> None:
    line = json.dumps(record)
    result = parse_ndjson(line)
    check(result)
    assert len(result.events) + len(result.rejected) == 1
    header = ",".join(record)
    check(
        parse_csv(
            header + "\n" + ",".join("" if v is None else str(v).replace("\n", " ") for v in record.values())
        )
    )
