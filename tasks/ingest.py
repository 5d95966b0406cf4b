"""Accepting payloads and processing inbox rows: bytes -> inbox -> parse -> store / quarantine.

Accepting stores the bytes first (one inbox row per batch), so nothing accepted can be lost; the
queue only carries inbox ids. Processing one inbox row is one transaction that holds the row's lock:
a redelivered or re-driven task either finds it processed or redoes it whole.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from itertools import islice
from typing import IO

from monitor.interop import ParseResult, ValidationContext, detect_format, formats, parse_payload
from storage import repository as repo
from storage.db import session
from tasks.runtime import Runtime

log = logging.getLogger("imn.ingest")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Batch:
    """One slice of a payload: its bytes and where its first line sits in the original file."""

    data: bytes
    first_line: int
    label: str


READ_CHUNK = 256 * 1024  # lines are cut from this much at a time


def iter_lines(f: IO[bytes], chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """The lines of a binary file as `bytes.splitlines(keepends=True)` cuts them (\\n, \\r\\n and a
    lone \\r end a line), read chunk by chunk: the file is never whole in memory."""
    pending = b""
    while chunk := f.read(chunk_size):
        lines = (pending + chunk).splitlines(keepends=True)
        # the last piece may go on in the next chunk: no line end yet, or a CR whose LF is still to come
        pending = b"" if lines[-1].endswith(b"\n") else lines.pop()
        yield from lines
    if pending:
        yield pending


def iter_batches(f: IO[bytes], fmt: str, source_name: str, batch_lines: int,
                 chunk_size: int = READ_CHUNK) -> Iterator[Batch]:
    """Line-based formats (the registry's `line_based`) are cut into batches of `batch_lines`, each
    starting with the format's header lines (CSV: its header); the others (FHIR, HL7) stay whole (a
    message or bundle is one unit of acknowledgement). A line payload of at most batch_lines lines is
    one batch labelled with the source name alone."""
    spec = formats.get(fmt)
    if spec is None or not spec.line_based:
        yield Batch(f.read(), 1, source_name)
        return
    lines = iter_lines(f, chunk_size)
    header = list(islice(lines, spec.header_lines))
    buf = list(islice(lines, batch_lines + 1))
    if len(buf) <= batch_lines:
        yield Batch(b"".join(header + buf), 1, source_name)
        return
    done = len(header)  # lines of the file before buf
    while buf:
        chunk, rest = buf[:batch_lines], buf[batch_lines:]
        first_line = done + 1  # 1-based line number in the file
        yield Batch(b"".join(header + chunk), first_line - len(header),
                    f"{source_name}#L{first_line}-{first_line + len(chunk) - 1}")
        done += len(chunk)
        buf = rest + list(islice(lines, batch_lines - len(rest)))


def split_payload(data: bytes, fmt: str, source_name: str, batch_lines: int) -> list[Batch]:
    """iter_batches over bytes already in memory."""
    return list(iter_batches(io.BytesIO(data), fmt, source_name, batch_lines))


def parse_received(rt: Runtime, data: bytes, fmt: str, received_at: datetime) -> ParseResult:
    """Parse a payload as ingestion reads it: with the code map, the zone of times written without
    an offset (IMN_TIMEZONE) and the time the bytes were received, which bounds clinical times
    (monitor reads no clock). The one place both the inbox worker and the MLLP listener's ACK use,
    so that an ACK says what processing will do."""
    context = ValidationContext(received_at=received_at, zone=rt.settings.zone)
    return parse_payload(data, fmt, code_map=rt.code_map, context=context)


@dataclass(frozen=True)
class Accepted:
    inbox_id: int
    new: bool  # False: the same bytes were accepted before (that inbox row stands for them)


def accept(rt: Runtime, data: bytes, fmt: str, source_name: str) -> list[Accepted]:
    """Store a payload durably (as one or more inbox rows) and return them."""
    return accept_file(rt, io.BytesIO(data), fmt, source_name)


DETECT_BYTES = 1024 * 1024  # a payload larger than this is detected from its first line when it can be


class _Prefixed(io.RawIOBase):
    """Bytes already read from a stream, then the rest of the stream: a file read once, not held."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        if size is None or size < 0:
            out, self._head = self._head + self._rest.read(), b""
            return out
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)


def nonblank(f: IO[bytes], chunk_size: int = READ_CHUNK) -> IO[bytes] | None:
    """The stream, unchanged in content, or None when it holds nothing but whitespace. Reads only up
    to its first non-blank byte (a large file is not read whole to be checked)."""
    head = b""
    while chunk := f.read(chunk_size):
        head += chunk
        if chunk.strip():
            return _Prefixed(head, f)
    return None


def detect_stream(f: IO[bytes]) -> tuple[str, IO[bytes]]:
    """The format of a payload read from `f` (or "auto" when it cannot be told: processing detects
    again and quarantines the payload with the detector's reason), and a stream of the same bytes.

    A payload of at most DETECT_BYTES is detected whole. A larger one whose first line alone shows a
    line-based format (an NDJSON event object, a CSV header) is not read whole: the whole payload
    would be detected the same way, since the formats that read beyond the first line (a FHIR
    resource over several lines) are not line-based. Anything else is read whole, as before."""
    head = f.read(DETECT_BYTES)
    more = f.read(1)
    if more:
        end = head.find(b"\n")
        if end > 0:
            try:
                fmt = detect_format(head[:end + 1])
            except ValueError:
                fmt = ""
            if formats.is_line_based(fmt):
                return fmt, _Prefixed(head + more, f)
        head += more + f.read()
    try:
        return detect_format(head), io.BytesIO(head)
    except ValueError:
        return "auto", io.BytesIO(head)


def accept_file(rt: Runtime, f: IO[bytes], fmt: str, source_name: str) -> list[Accepted]:
    """Store a payload read from a file, batch by batch as it is read (one transaction: all of its
    inbox rows or none); a line-based payload is never whole in memory."""
    if fmt == "auto":
        fmt, f = detect_stream(f)
    out: list[Accepted] = []
    now = utcnow()
    with session(rt.engine) as s:
        for b in iter_batches(f, fmt, source_name, rt.settings.batch_lines):
            inbox_id, created = repo.store_payload(s, b.data, fmt, b.label, now, line_offset=b.first_line - 1)
            out.append(Accepted(inbox_id, created))
    return out


@dataclass
class IngestCounts:
    accepted: int = 0
    duplicate: int = 0
    corrected: int = 0
    retracted: int = 0
    quarantined: int = 0
    patients: set[str] = field(default_factory=set)

    def add(self, other: "IngestCounts") -> None:
        for k in ("accepted", "duplicate", "corrected", "retracted", "quarantined"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.patients |= other.patients

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicate": self.duplicate, "corrected": self.corrected,
                "retracted": self.retracted, "quarantined": self.quarantined,
                "patients": len(self.patients)}


def process_inbox(rt: Runtime, inbox_id: int) -> IngestCounts | None:
    """Parse and store one inbox row. Returns None when it was already processed (idempotent)."""
    now = utcnow()
    with session(rt.engine) as s:
        row = repo.lock_inbox(s, inbox_id)
        if row is None:
            log.warning("inbox %s does not exist", inbox_id)
            return None
        if row.state == "processed":
            return None
        # the row's time of receipt, not now: re-processing a row later gives the same outcome
        received_at = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=UTC)
        result = parse_received(rt, row.payload_bytes, row.format, received_at)
        stored = repo.store_events(s, inbox_id, result.events, now)
        offset = row.line_offset or 0
        items = [repo.QuarantineItem(r.line + offset if r.line is not None else None, r.field, r.value,
                                     r.reason, r.raw) for r in result.rejected]
        items += stored.quarantined  # finals that contradict a stored final (storage found them)
        repo.quarantine_items(s, inbox_id, items)
        counts = IngestCounts(stored.accepted, stored.duplicate, stored.corrected, stored.retracted,
                              len(items), set(stored.patients))
        repo.inbox_mark(s, inbox_id, "processed", now, counts=counts.as_dict())
    log.info("inbox %s processed: %s", inbox_id, counts.as_dict())
    return counts
