"""CSV: a header row with the NDJSON field names, one event per row; empty cells are absent.

Rows are read one physical line at a time: none of the contract's fields can hold a line break, and
this way an unbalanced quote spoils its own row only instead of swallowing the rest of the file.
"""

from __future__ import annotations

import csv as _csv
from typing import Any

from monitor.interop.base import NOT_UTF8, Event, ParseResult, Rejected, decode, has_unstorable, to_event
from monitor.interop.ndjson import lift_comparator
from monitor.validation import ValidationContext

# every field the NDJSON contract knows (monitor.events); other columns are rejected per row when filled
KNOWN_COLUMNS = (
    "type",
    "patient_id",
    "analyte",
    "value",
    "unit",
    "comparator",
    "effective_at",
    "drug",
    "dose",
    "frequency",
    "route",
    "start",
    "end",
    "birth_date",
    "sex",
    "weight_kg",
    "height_cm",
    "source",
    "source_id",
    "status",
    "recorded_at",
)
DELIMITERS = (",", ";", "\t")


def sniff_delimiter(header: str) -> str | None:
    """The header's delimiter: comma, else semicolon or tab (spreadsheet exports in comma-decimal locales)."""
    for d in DELIMITERS:
        cells = [c.strip().strip('"').lower() for c in header.split(d)]
        if len(cells) > 1 and any(c in KNOWN_COLUMNS for c in cells):
            return d
    return None


def _cells(line: str, delimiter: str) -> list[str]:
    return next(_csv.reader([line], delimiter=delimiter, strict=True), [])


def parse_csv(data: bytes | str, context: ValidationContext | None = None) -> ParseResult:
    events: list[Event] = []
    rejected: list[Rejected] = []
    lines = decode(data).split("\n")
    header: list[str] | None = None
    delimiter = ","
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if header is None:
            found = sniff_delimiter(line)
            if found is None or has_unstorable(line):
                rejected.append(
                    Rejected(
                        number,
                        "(header)",
                        line[:80],
                        f"CSV header has none of the known columns ({', '.join(KNOWN_COLUMNS[:8])}, ...)",
                        line,
                    )
                )
                return ParseResult(events, rejected, "csv")
            delimiter = found
            try:
                header = [c.strip().lower() for c in _cells(line, delimiter)]
            except _csv.Error as exc:
                rejected.append(
                    Rejected(number, "(header)", line[:80], f"unreadable CSV header: {exc}", line)
                )
                return ParseResult(events, rejected, "csv")
            continue
        outcome = _row(line, number, header, delimiter, context)
        (events if not isinstance(outcome, Rejected) else rejected).append(outcome)  # type: ignore[arg-type]
    return ParseResult(events, rejected, "csv")


def _row(line: str, number: int, header: list[str], delimiter: str,
         context: ValidationContext | None) -> Event | Rejected:
    if has_unstorable(line):
        return Rejected(number, "(line)", "", NOT_UTF8, line)
    try:
        cells = _cells(line, delimiter)
    except _csv.Error as exc:
        return Rejected(number, "(line)", line[:80], f"unreadable CSV row: {exc}", line)
    extra = [c for c in cells[len(header) :] if c.strip()]
    if extra:
        return Rejected(
            number,
            "(line)",
            extra[0],
            f"row has {len(cells)} cells but the header has {len(header)} columns",
            line,
        )
    record: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):  # short rows: missing cells are absent
        cell = cell.strip()
        if cell:  # an empty cell means "absent", as an omitted NDJSON key
            if name in record:
                return Rejected(number, name, cell, f"column {name!r} appears twice in the header", line)
            record[name] = cell
    if "type" not in record:
        # a lab export without a type column: the row's content says what it is
        record["type"] = "lab" if "analyte" in record else "medication" if "drug" in record else None
    return to_event(lift_comparator(record), number, line, context)
