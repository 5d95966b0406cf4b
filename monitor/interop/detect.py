"""Which of the four input formats a payload is, from its first bytes (design.md, step 2)."""

from __future__ import annotations

import json

from monitor.interop.base import decode
from monitor.interop.csv import sniff_delimiter

FORMATS = ("fhir", "hl7v2", "ndjson", "csv")
MLLP_START, MLLP_END = "\x0b", "\x1c"
HL7_HEADERS = ("MSH", "FHS", "BHS")


def strip_mllp(text: str) -> str:
    """Drop MLLP framing (<VT> message <FS><CR>) wherever it occurs, leaving the messages."""
    return text.replace(MLLP_START, "").replace(MLLP_END, "")


def detect_format(data: bytes | str) -> str:
    """'fhir' | 'hl7v2' | 'ndjson' | 'csv'; ValueError saying why when the payload is none of them."""
    text = decode(data)
    head = strip_mllp(text).lstrip()
    if not head:
        raise ValueError("empty payload: no data to parse")
    if head[:3] in HL7_HEADERS and len(head) > 3 and not head[3].isalnum() and not head[3].isspace():
        return "hl7v2"
    first_line = head.split("\n", 1)[0].strip()
    if head.startswith("{"):
        whole = _json(head)
        if isinstance(whole, dict):
            return "fhir" if "resourceType" in whole else "ndjson"
        line = _json(first_line)
        if isinstance(line, dict):
            # FHIR bulk data (one resource per line) is FHIR; our own event lines are NDJSON
            return "fhir" if "resourceType" in line else "ndjson"
        # the first line is broken JSON: still an NDJSON file whose first line will be rejected
        # when the next line starting with "{" is there; a lone broken object is not guessed
        if any(ln.strip().startswith("{") for ln in head.split("\n")[1:]):
            return "ndjson"
        if whole is _TOO_DEEP or line is _TOO_DEEP:
            # `imn-monitor ingest` said "unknown format 'auto'" for this (issue 12): say what it is
            raise ValueError(f"payload is JSON nested too deeply to read (RecursionError): {first_line[:60]!r}")
        raise ValueError(f"payload starts with '{{' but is not a JSON object: {first_line[:60]!r}")
    if head.startswith("["):
        raise ValueError("payload is a JSON array: send NDJSON (one object per line) or a FHIR Bundle")
    if sniff_delimiter(first_line) is not None:
        return "csv"
    raise ValueError(
        "format not recognised: the first line is not an HL7 v2 MSH/FHS/BHS segment, not a JSON object "
        f"(FHIR or NDJSON), and not a CSV header with known columns: {first_line[:60]!r}"
    )


_TOO_DEEP = object()


def _json(text: str) -> object:
    # plain json (duplicate keys do not change the format; the format's parser refuses them)
    try:
        return json.loads(text)
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return None
