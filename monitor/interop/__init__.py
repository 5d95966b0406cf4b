"""Parsers from the wire formats (the registry in monitor/interop/formats.py) to validated events.

Pure: the caller passes bytes or text in, with a ValidationContext (when the payload was received,
the zone of times written without an offset); nothing here reads files, clocks or the network.
`parse_payload` never raises: what it cannot understand comes back as `Rejected` with its reason,
and a payload never vanishes: one that yields neither an event nor a rejection is rejected whole.
"""

from __future__ import annotations

from monitor.interop import formats
from monitor.interop.base import Event, MessageAck, ParseResult, Rejected, decode
from monitor.interop.codemap import CodeMap, CodeMapError
from monitor.interop.formats import detect_format
from monitor.validation import ValidationContext

__all__ = [
    "CodeMap",
    "CodeMapError",
    "Event",
    "MessageAck",
    "ParseResult",
    "Rejected",
    "ValidationContext",
    "detect_format",
    "parse_payload",
]


def parse_payload(
    data: bytes | str, fmt: str = "auto", code_map: CodeMap | None = None, *, context: ValidationContext
) -> ParseResult:
    """Parse a whole payload in `fmt` ('auto' detects it) into events and rejections.

    `context` is required: ingestion always knows when it received the bytes and in which zone its
    senders' times without an offset are meant (tasks.ingest builds it from the settings)."""
    return _nothing_vanishes(_parse(data, fmt, code_map or CodeMap.empty(), context), data)


def _nothing_vanishes(result: ParseResult, data: object) -> ParseResult:
    """The one place that enforces: a payload that yields no event and no rejection is itself
    rejected, so that it shows in the quarantine with a reason instead of "accepted 0, quarantined
    0" (an HL7 file with spaces between segments did that). Format parsers give more specific
    reasons where they can; this is the floor for all of them."""
    if not result.events and not result.rejected:
        text = decode(bytes(data) if isinstance(data, bytearray) else data) if isinstance(
            data, (bytes, bytearray, str)) else repr(data)
        why = (f"nothing readable in this {result.format} payload: it yielded no event and nothing "
               "to reject (a CSV header without rows, a FHIR Bundle of resources this monitor does "
               "not read, ...)")
        result.rejected.append(Rejected(None, "(payload)", text[:80], why, text))
    return result


def _parse(data: bytes | str, fmt: str, code_map: CodeMap, context: ValidationContext) -> ParseResult:
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
        spec = formats.get(fmt)
        if spec is None:
            return _whole(data, fmt, f"unknown format {fmt!r} (expected auto, {', '.join(formats.names())})")
        return spec.parse(data, code_map, context)
    except Exception as exc:  # noqa: BLE001 — the contract is "never raises"; a parser bug is quarantined
        return _whole(
            data, fmt, f"parser error ({type(exc).__name__}: {exc}); the payload is kept for review"
        )


def _whole(data: object, fmt: str, reason: str) -> ParseResult:
    text = decode(data) if isinstance(data, (bytes, bytearray, str)) else repr(data)
    return ParseResult([], [Rejected(None, "(payload)", text[:80], reason, text)], fmt)
