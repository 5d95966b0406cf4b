"""Sniffing a payload's format from its first bytes: one predicate per format, read by the format
registry (monitor/interop/formats.py, which tries them in its order), and the reason given when
none matches."""

from __future__ import annotations

import json
from functools import cached_property

from monitor.interop.base import decode
from monitor.interop.csv import sniff_delimiter

MLLP_START, MLLP_END = "\x0b", "\x1c"
HL7_HEADERS = ("MSH", "FHS", "BHS")


def strip_mllp(text: str) -> str:
    """Drop MLLP framing (<VT> message <FS><CR>) wherever it occurs, leaving the messages."""
    return text.replace(MLLP_START, "").replace(MLLP_END, "")


_TOO_DEEP = object()


def _json(text: str) -> object:
    # plain json (duplicate keys do not change the format; the format's parser refuses them)
    try:
        return json.loads(text)
    except RecursionError:
        return _TOO_DEEP
    except ValueError:
        return None


class Sample:
    """What the detectors look at: the payload's text without MLLP framing and leading blanks, its
    first line, and (computed once, when a detector asks) the whole text and the first line as JSON."""

    def __init__(self, data: bytes | str) -> None:
        self.head = strip_mllp(decode(data)).lstrip()
        self.first_line = self.head.split("\n", 1)[0].strip()

    @cached_property
    def whole_json(self) -> object:
        return _json(self.head) if self.head.startswith("{") else None

    @cached_property
    def line_json(self) -> object:
        return _json(self.first_line) if self.head.startswith("{") else None

    @cached_property
    def json_object(self) -> dict[str, object] | None:
        """The JSON object that decides between FHIR and NDJSON: the whole payload when it is one
        object, else its first line (FHIR bulk data is one resource per line)."""
        for candidate in (self.whole_json, self.line_json):
            if isinstance(candidate, dict):
                return candidate
        return None


def is_hl7v2(s: Sample) -> bool:
    h = s.head
    return h[:3] in HL7_HEADERS and len(h) > 3 and not h[3].isalnum() and not h[3].isspace()


def is_fhir(s: Sample) -> bool:
    return s.json_object is not None and "resourceType" in s.json_object


def is_ndjson(s: Sample) -> bool:
    if not s.head.startswith("{"):
        return False
    if s.json_object is not None:
        return "resourceType" not in s.json_object  # our own event lines
    # the first line is broken JSON: still an NDJSON file whose first line will be rejected when the
    # next line starting with "{" is there; a lone broken object is not guessed
    return any(ln.strip().startswith("{") for ln in s.head.split("\n")[1:])


def is_csv(s: Sample) -> bool:
    return not s.head.startswith(("{", "[")) and sniff_delimiter(s.first_line) is not None


def why_not(s: Sample, recognised: str) -> str:
    """Why a payload matched no format (`recognised`: what the registry's formats look like)."""
    if not s.head:
        return "empty payload: no data to parse"
    if s.head.startswith("{"):
        if s.whole_json is _TOO_DEEP or s.line_json is _TOO_DEEP:
            # `imn-monitor ingest` said "unknown format 'auto'" for this (issue 12): say what it is
            return f"payload is JSON nested too deeply to read (RecursionError): {s.first_line[:60]!r}"
        return f"payload starts with '{{' but is not a JSON object: {s.first_line[:60]!r}"
    if s.head.startswith("["):
        return "payload is a JSON array: send NDJSON (one object per line) or a FHIR Bundle"
    return f"format not recognised: the first line is not {recognised}: {s.first_line[:60]!r}"
