"""NDJSON: one JSON event object per line (docs/input-contract.md, "NDJSON"). Blank lines are skipped."""

from __future__ import annotations

import json
from typing import Any

from monitor.interop import json_text
from monitor.interop.base import (
    NOT_UTF8,
    Event,
    ParseResult,
    Rejected,
    decode,
    has_unstorable,
    split_comparator,
    to_event,
)
from monitor.validation import ValidationContext


def parse_ndjson(data: bytes | str, context: ValidationContext | None = None) -> ParseResult:
    events: list[Event] = []
    rejected: list[Rejected] = []
    # split on "\n" only: str.splitlines would also split on U+2028 etc., which JSON allows in strings
    for number, line in enumerate(decode(data).split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        outcome = parse_line(line, number, context)
        (events if not isinstance(outcome, Rejected) else rejected).append(outcome)  # type: ignore[arg-type]
    return ParseResult(events, rejected, "ndjson")


def parse_line(line: str, number: int | None, context: ValidationContext | None = None) -> Event | Rejected:
    if has_unstorable(line):
        return Rejected(number, "(line)", "", NOT_UTF8, line)
    try:
        record = json_text.loads(line)
    except json_text.DuplicateKey as exc:
        return Rejected(number, exc.key, "", str(exc), line)
    except json.JSONDecodeError as exc:
        return Rejected(number, "(line)", line[:80], f"invalid JSON: {exc.msg} at column {exc.colno}", line)
    except (ValueError, RecursionError) as exc:  # 5000-digit integers, absurd nesting (json_text.TooDeep)
        return Rejected(number, "(line)", line[:80], f"invalid JSON: {exc or type(exc).__name__}", line)
    if isinstance(record, dict):
        record = lift_comparator(record)
    return to_event(record, number, line, context)


def lift_comparator(record: dict[str, Any]) -> dict[str, Any]:
    """A lab value written as text with its comparator ("<5") becomes comparator + value, as labs
    export censored results that way; an explicit `comparator` field is left alone."""
    value = record.get("value")
    if record.get("type") == "lab" and isinstance(value, str) and "comparator" not in record:
        comparator, rest = split_comparator(value)
        if comparator is not None:
            return {**record, "comparator": comparator, "value": rest}
    return record
