"""The inbox (verbatim payloads, stored before anything else) and the quarantine (what could not be read)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from monitor.interop import formats
from storage._sql import upsert
from storage.models import INBOX_STATES, InboxRow, QuarantineRow

# the registered formats (monitor/interop/formats.py), and "auto": a payload whose format could not
# be detected is still stored (never refused unseen); processing detects again and quarantines it
AUTO = "auto"


def accepted_formats() -> tuple[str, ...]:
    return (*formats.names(), AUTO)


_inbox = InboxRow.__table__  # type: ignore[attr-defined]
_quarantine = QuarantineRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class QuarantineItem:
    """One piece of input that could not become an event: where, which field, what value, why."""

    line: int | None
    field: str
    value: str
    reason: str
    raw: str


@dataclass(frozen=True)
class InboxItem:
    id: int
    state: str
    format: str
    source_name: str
    attempts: int
    line_offset: int
    received_at: datetime
    payload_bytes: bytes


def store_payload(s: Session, data: bytes, fmt: str, source_name: str, now: datetime,
                  line_offset: int = 0) -> tuple[int, bool]:
    """Store the bytes verbatim once: (inbox_id, created). The same bytes again return the first id."""
    if fmt not in accepted_formats():
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(accepted_formats())})")
    digest = hashlib.sha256(data).hexdigest()
    stmt = upsert(s, _inbox).values(
        content_hash=digest, format=fmt, source_name=source_name[:500], received_at=now, state="received",
        attempts=0, line_offset=line_offset, payload=data,
    ).on_conflict_do_nothing(index_elements=["content_hash"]).returning(_inbox.c.id)
    created_id = s.execute(stmt).scalar()
    if created_id is not None:
        return int(created_id), True
    existing = s.execute(select(_inbox.c.id).where(_inbox.c.content_hash == digest)).scalar_one()
    return int(existing), False


def inbox_mark(s: Session, inbox_id: int, state: str, now: datetime, counts: dict[str, Any] | None = None,
               error: str | None = None) -> None:
    """Move an inbox row to `state`; `processing` counts an attempt, `processed`/`failed` stamp the time."""
    if state not in INBOX_STATES:
        raise ValueError(f"unknown inbox state {state!r}")
    values: dict[str, Any] = {"state": state, "error": error}
    if counts is not None:
        values["counts"] = counts
    if state == "processing":
        values["attempts"] = _inbox.c.attempts + 1
    if state in ("processed", "failed"):
        values["processed_at"] = now
    s.execute(update(_inbox).where(_inbox.c.id == inbox_id).values(**values))


def pending_inbox(s: Session, older_than: datetime, limit: int) -> list[int]:
    """Inbox rows still received/processing since before `older_than`: work the sweeper re-drives."""
    rows = s.execute(
        select(_inbox.c.id)
        .where(_inbox.c.state.in_(("received", "processing")), _inbox.c.received_at < older_than)
        .order_by(_inbox.c.id)
        .limit(limit)
    )
    return [int(r) for r in rows.scalars()]


def load_payload(s: Session, inbox_id: int) -> tuple[bytes, str, str]:
    row = s.execute(
        select(_inbox.c.payload, _inbox.c.format, _inbox.c.source_name).where(_inbox.c.id == inbox_id)
    ).one()
    return bytes(row.payload), row.format, row.source_name


def lock_inbox(s: Session, inbox_id: int) -> InboxItem | None:
    """The inbox row, locked until the caller's transaction ends (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the database's write lock). None when it does not exist."""
    row = s.execute(select(_inbox).where(_inbox.c.id == inbox_id).with_for_update()).one_or_none()
    if row is None:
        return None
    return InboxItem(int(row.id), row.state, row.format, row.source_name, row.attempts, row.line_offset,
                     row.received_at, bytes(row.payload))


def quarantine_items(s: Session, inbox_id: int | None, items: list[QuarantineItem],
                     now: datetime | None = None) -> int:
    """Record every rejected item with its reason (one bulk insert). Call it in the transaction that
    marks the inbox row processed: a failed attempt then leaves no quarantine rows behind to double."""
    if not items:
        return 0
    created = now or datetime.now(UTC)
    s.execute(insert(_quarantine), [
        {"inbox_id": inbox_id, "line": it.line, "field": it.field[:200], "value": it.value,
         "reason": it.reason, "raw": it.raw, "created_at": created}
        for it in items
    ])
    return len(items)

