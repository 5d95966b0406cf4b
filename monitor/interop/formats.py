"""The one registry of input formats: adding a format is one `InputFormat` entry here (plus its
parser module and tests). Everything else reads this table:

- detection (`detect_format`) tries the detectors in the registry's order;
- `parse_payload` (monitor/interop/__init__.py) calls the entry's parser;
- the inbox (storage/inbox.py) accepts the registered names;
- ingestion (tasks/ingest.py) cuts line-based formats into batches, keeping `header_lines`;
- the CLI's `ingest --format` choices (cli/main.py);
- the HTTP routes `POST /ingest/<name>`, their media types and OpenAPI text (feed/routes/ingest.py).

Pure like the rest of monitor/: parsers take bytes or text and a ValidationContext, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor.interop import detect
from monitor.interop.base import ParseResult
from monitor.interop.codemap import CodeMap
from monitor.validation import ValidationContext

Parser = Callable[[bytes | str, CodeMap, ValidationContext], ParseResult]


@dataclass(frozen=True)
class InputFormat:
    name: str  # the format's id: CLI --format value, inbox format, /ingest/<name>
    title: str  # how people call it (OpenAPI summary)
    media_types: tuple[str, ...]  # Content-Types the HTTP route accepts, the preferred first
    detect: Callable[[detect.Sample], bool]  # True when a payload's start is this format
    looks_like: str  # what `detect` recognises, for the reason given when nothing matches
    parse: Parser
    line_based: bool  # one record per line: large payloads are cut into batches of lines
    description: str  # the HTTP route's description
    example: str  # a request body for the OpenAPI page
    header_lines: int = 0  # lines repeated at the top of every batch (a CSV header)


# Parsers are imported when first used: importing the registry stays cheap for the CLI.
def _ndjson(data: bytes | str, code_map: CodeMap, context: ValidationContext) -> ParseResult:
    from monitor.interop.ndjson import parse_ndjson

    return parse_ndjson(data, context)


def _csv(data: bytes | str, code_map: CodeMap, context: ValidationContext) -> ParseResult:
    from monitor.interop.csv import parse_csv

    return parse_csv(data, context)


def _hl7v2(data: bytes | str, code_map: CodeMap, context: ValidationContext) -> ParseResult:
    from monitor.interop.hl7v2 import parse_hl7v2

    return parse_hl7v2(data, code_map, context)


def _fhir(data: bytes | str, code_map: CodeMap, context: ValidationContext) -> ParseResult:
    from monitor.interop.fhir import parse_fhir

    return parse_fhir(data, code_map, context)


# Detection order matters: the first entry whose detector says yes wins.
REGISTRY: dict[str, InputFormat] = {f.name: f for f in (
    InputFormat(
        "hl7v2", "HL7 v2 ORU^R01", ("x-application/hl7-v2+er7", "application/hl7-v2", "text/plain"),
        detect.is_hl7v2, "an HL7 v2 MSH/FHS/BHS segment", _hl7v2, line_based=False,
        description="HL7 v2 ORU^R01 (2.3-2.5.1, ER7 encoding; MLLP framing and FHS/BHS batches read): one "
                    "message or batch, stored whole as one unit of acknowledgement.",
        example="MSH|^~\\&|LIS|HOSP|IMN|NEPH|20250301093000||ORU^R01|1|P|2.5.1\r"),
    InputFormat(
        "fhir", "FHIR R4 JSON", ("application/fhir+json", "application/json"),
        detect.is_fhir, "a FHIR R4 JSON resource", _fhir, line_based=False,
        description="A FHIR R4 Bundle (any type) or a single resource (Observation, DiagnosticReport, "
                    "Patient, MedicationAdministration/Statement/Request), or FHIR bulk data (one "
                    "resource per line), stored whole.",
        example='{"resourceType":"Bundle","type":"collection","entry":[]}'),
    InputFormat(
        "ndjson", "NDJSON events", ("application/x-ndjson", "application/ndjson", "application/jsonl"),
        detect.is_ndjson, "a JSON event object (NDJSON)", _ndjson, line_based=True,
        description="NDJSON events, one JSON object per line (docs/input-contract.md); large bodies are "
                    "cut into batches of IMN_BATCH_LINES lines.",
        example='{"type":"lab","patient_id":"P1","analyte":"anti_pla2r","value":168,"unit":"RU/mL",'
                '"effective_at":"2025-01-10"}\n'),
    InputFormat(
        "csv", "CSV events", ("text/csv",),
        detect.is_csv, "a CSV header with known columns", _csv, line_based=True, header_lines=1,
        description="CSV with the NDJSON field names as its header (comma, semicolon or tab); large "
                    "bodies are cut into batches of IMN_BATCH_LINES lines, each with the header.",
        example="type,patient_id,analyte,value,unit,effective_at\nlab,P1,anti_pla2r,168,RU/mL,2025-01-10\n"),
)}


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str) -> InputFormat | None:
    return REGISTRY.get(name)


def is_line_based(name: str) -> bool:
    f = REGISTRY.get(name)
    return f is not None and f.line_based


def detect_format(data: bytes | str) -> str:
    """The registered format a payload is, from its first bytes; ValueError saying why when none."""
    sample = detect.Sample(data)
    if sample.head:
        for f in REGISTRY.values():
            if f.detect(sample):
                return f.name
    looks = [f.looks_like for f in REGISTRY.values()]
    recognised = ", not ".join(looks[:-1]) + (", and not " if len(looks) > 1 else "") + looks[-1]
    raise ValueError(detect.why_not(sample, recognised))
