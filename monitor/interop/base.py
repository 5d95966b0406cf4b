"""Types every parser returns, and the one funnel from a decoded record to a validated event.

A parser never raises for bad input: what it cannot understand becomes a `Rejected` naming the line
(or segment / entry index), the field, the value and the reason, so the pipeline can quarantine it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Literal

from monitor.analytes import ANALYTES, REFUSED_LOINC, RefusedCodeError, UnknownAnalyteError
from monitor.analytes import analyte as lookup_analyte
from monitor.events import InvalidEvent, LabResult, MedicationEvent, Patient, Problem, parse_event
from monitor.validation import ValidationContext

Event = Patient | LabResult | MedicationEvent
AckCode = Literal["AA", "AE", "AR"]

RAW_LIMIT = 2048  # raw text kept per rejection: enough to see the problem, bounded for storage
VALUE_LIMIT = 200
# characters that PostgreSQL text and UTF-8 cannot store: NUL and unpaired surrogates (which
# surrogateescape decoding leaves for undecodable bytes)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str, limit: int | None = None) -> str:
    """Text safe to store and show: undecodable bytes as \\xNN, NUL as \\x00, bounded in length."""
    if _UNSTORABLE.search(text):
        text = _UNSTORABLE.sub(_escape_char, text)
    if limit is not None and len(text) > limit:
        suffix = f"... [{len(text)} chars]"
        text = text[: limit - len(suffix)] + suffix
    return text


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    # surrogateescape maps byte 0xNN to U+DCNN; other lone surrogates came from JSON "\udXXX" escapes
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def has_unstorable(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


@dataclass(frozen=True)
class Rejected:
    """One part of a payload that could not become an event (quarantined, never dropped)."""

    line: int | None  # 1-based line (NDJSON/CSV), segment number (HL7) or entry index (FHIR)
    field: str
    value: str
    reason: str
    raw: str

    def __post_init__(self) -> None:
        # every rejection must be storable and explain itself, whatever the input was
        object.__setattr__(self, "field", storable(str(self.field) or "(record)", VALUE_LIMIT))
        object.__setattr__(self, "value", storable(str(self.value), VALUE_LIMIT))
        object.__setattr__(self, "reason", storable(str(self.reason).strip() or "rejected", 1000))
        object.__setattr__(self, "raw", storable(str(self.raw), RAW_LIMIT))


@dataclass(frozen=True)
class MessageAck:
    """How one HL7 v2 message was received: AA accepted, AE some results rejected, AR rejected."""

    control_id: str
    code: AckCode
    reason: str | None
    version: str
    error_code: str | None = None  # HL7 table 0357 code for the ERR segment when not AA

    def __post_init__(self) -> None:
        # control_id and version are copied from MSH-10/MSH-12 as received: an undecodable byte there
        # (a lone surrogate after decode) made the ACK text unencodable, and the MLLP listener died
        # writing it, after storing the message (found by fuzzing: tests/fuzz/corpus/hl7v2/
        # crash_msh10_not_utf8.hl7). Shown as \xNN, like every rejection's text.
        object.__setattr__(self, "control_id", storable(str(self.control_id)))
        object.__setattr__(self, "version", storable(str(self.version)))
        if self.reason is not None:
            object.__setattr__(self, "reason", storable(str(self.reason)))


@dataclass
class ParseResult:
    events: list[Event]
    rejected: list[Rejected]
    format: str
    acks: list[MessageAck] = field(default_factory=list)


def problems_reason(problems: list[Problem]) -> str:
    """One reason for a record: the first problem's reason, then every other problem in full."""
    first, rest = problems[0], problems[1:]
    return "; ".join([first.reason, *(str(p) for p in rest)])


def _unstorable_path(obj: Any, path: str = "") -> str | None:
    if isinstance(obj, str):
        return path or "(value)" if has_unstorable(obj) else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _unstorable_path(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _unstorable_path(v, f"{path}[{i}]")
            if found:
                return found
    return None


def to_event(record: Any, line: int | None, raw: str, context: ValidationContext | None = None) -> Event | Rejected:
    """Validate one decoded record through monitor.events (with the ingestion context: zone of times
    without an offset, time of receipt); one Rejected for all its problems."""
    try:
        bad = _unstorable_path(record) if isinstance(record, dict) else None
    except RecursionError:  # a record nested deeper than the interpreter recurses (tests/fuzz: deep_values)
        return Rejected(line, "(record)", "", "record nested too deeply to read", raw)
    if bad is not None:
        return Rejected(line, bad, "", "text contains a NUL character or bytes that are not valid UTF-8", raw)
    try:
        event = parse_event(record, context)
    except InvalidEvent as exc:
        problems = [_missing(p) for p in exc.problems] or [Problem("(record)", "", str(exc))]
        first = problems[0]
        return Rejected(line, first.field, first.value, problems_reason(problems), raw)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # not expected from pydantic, but a record must never take the whole payload down
        return Rejected(line, "(record)", "", f"invalid record: {exc}", raw)
    return _beyond_utc(event, line, raw) or event


def _beyond_utc(event: Event, line: int | None, raw: str) -> Rejected | None:
    """A time that exists in its own offset but not in UTC (0001-01-01T00:00+14:00,
    9999-12-31T23:59-14:00) validated, then made storage raise OverflowError converting it, which
    failed the whole batch with nothing quarantined (found by tests/fuzz: the bad_dates corpus files)."""
    for name in ("effective_at", "recorded_at"):
        when = getattr(event, name, None)
        if when is None:
            continue
        try:
            when.astimezone(timezone.utc)
        except OverflowError:
            why = "date-time is outside years 1-9999 once converted to UTC"
            return Rejected(line, name, when.isoformat(), why, raw)
    return None


def _missing(problem: Problem) -> Problem:
    # pydantic reports the whole record as the "value" of a missing field: say "(missing)" instead
    if problem.reason == "Field required":
        return Problem(problem.field, "(missing)", "field required")
    return problem


COMPARATORS = ("<=", ">=", "<", ">")


def split_comparator(text: str) -> tuple[str | None, str]:
    """'<5' -> ('<', '5'); '>= 1500' -> ('>=', '1500'); '12.5' -> (None, '12.5')."""
    t = text.strip()
    for c in COMPARATORS:
        if t.startswith(c):
            return c, t[len(c) :].strip()
    return None, t


def decode(data: bytes | str) -> str:
    """Bytes as UTF-8 text; undecodable bytes survive as surrogates so that only the line, row or
    message holding them is rejected (see `has_unstorable`), not the whole payload. BOM dropped."""
    text = data.decode("utf-8", errors="surrogateescape") if isinstance(data, (bytes, bytearray)) else data
    return text.removeprefix("\ufeff")


NOT_UTF8 = "not valid UTF-8 text (undecodable bytes shown as \\xNN) or contains a NUL character"


def catalogue_key(code: str) -> str | None:
    """The analyte key for a catalogue key, alias or LOINC code; None when the catalogue lacks it.
    Raises RefusedCodeError for a code the catalogue refuses on purpose (REFUSED_LOINC)."""
    try:
        return lookup_analyte(code).key
    except RefusedCodeError:
        raise  # a code refused on purpose is quarantined with its own reason, not "unknown"
    except UnknownAnalyteError:
        return None


def retraction_placeholder(key: str) -> tuple[float, str]:
    """A value and unit for a retraction (HL7 D, FHIR entered-in-error) that repeats none: LabResult
    needs them, and the value must pass the plausibility check. It is never read: retractions are
    found by identity and ignored by the rules. (Better: LabResult.value optional for entered-in-error.)"""
    spec = ANALYTES[key]
    low, _high = spec.plausible
    return max(low, 0.0), spec.canonical_unit


def coded_analyte(codes: Sequence[tuple[str | None, str | None]], is_loinc: Callable[[str | None], bool],
                  mapped: Callable[[str, str | None], str | None]) -> str | None:
    """The analyte of a result's (code, system) pairs: the first catalogue LOINC code among those whose
    system is LOINC, else the first code the code map (`mapped(code, system)`) knows, else None.

    Raises RefusedCodeError when a LOINC code among them is one the catalogue refuses on purpose
    (REFUSED_LOINC, e.g. CD19 % 8117-4): the LOINC code says what the result is, so a local code or a
    code map entry beside it cannot make it a monitored value."""
    for code, system in codes:
        if code and is_loinc(system) and code.strip() in REFUSED_LOINC:
            raise RefusedCodeError(REFUSED_LOINC[code.strip()])
    for code, system in codes:
        if code and is_loinc(system):
            found = catalogue_key(code)
            if found:
                return found
    for code, system in codes:
        if code:
            found = mapped(code, system)
            if found:
                return found
    return None


def is_refusal(reason: str) -> bool:
    """A rejection because the catalogue refuses the code on purpose (not a fault of the message)."""
    return reason in REFUSED_LOINC.values()
