"""Parsers from the wire formats (FHIR R4, HL7 v2 ORU^R01, NDJSON, CSV) to validated events.

Pure: the caller passes bytes or text in; nothing here reads files, clocks or the network.
`parse_payload` never raises: what it cannot understand comes back as `Rejected` with its reason.
"""

from __future__ import annotations

from monitor.interop.base import Event, MessageAck, ParseResult, Rejected, decode
from monitor.interop.codemap import CodeMap, CodeMapError
from monitor.interop.detect import FORMATS, detect_format

__all__ = [
    "FORMATS",
    "CodeMap",
    "CodeMapError",
    "Event",
    "MessageAck",
    "ParseResult",
    "Rejected",
    "detect_format",
    "parse_payload",
]


def parse_payload(data: bytes | str, fmt: str = "auto", code_map: CodeMap | None = None) -> ParseResult:
    """Parse a whole payload in `fmt` ('auto' detects it) into events and rejections."""
    code_map = code_map or CodeMap.empty()
    try:
        if not isinstance(data, (bytes, bytearray, str)):
            return _whole(data, fmt, f"payload must be bytes or text, not {type(data).__name__}")
        if not decode(data).strip():
            return _whole(data, fmt if fmt != "auto" else "unknown", "empty payload: no data to parse")
        if fmt == "auto":
            try:
                fmt = detect_format(data)
            except ValueError as exc:
                return _whole(data, "unknown", str(exc))
        if fmt == "ndjson":
            from monitor.interop.ndjson import parse_ndjson

            return parse_ndjson(data)
        if fmt == "csv":
            from monitor.interop.csv import parse_csv

            return parse_csv(data)
        if fmt == "hl7v2":
            from monitor.interop.hl7v2 import parse_hl7v2

            return parse_hl7v2(data, code_map)
        if fmt == "fhir":
            from monitor.interop.fhir import parse_fhir

            return parse_fhir(data, code_map)
        return _whole(data, fmt, f"unknown format {fmt!r} (expected auto, {', '.join(FORMATS)})")
    except Exception as exc:  # noqa: BLE001 — the contract is "never raises"; a parser bug is quarantined
        return _whole(
            data, fmt, f"parser error ({type(exc).__name__}: {exc}); the payload is kept for review"
        )


def _whole(data: object, fmt: str, reason: str) -> ParseResult:
    text = decode(data) if isinstance(data, (bytes, bytearray, str)) else repr(data)
    return ParseResult([], [Rejected(None, "(payload)", text[:80], reason, text)], fmt)
