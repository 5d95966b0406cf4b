"""The notification outbox: rows written in the alert's transaction, delivered later with retries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from storage.models import OutboxRow

__all__ = ["OutboxRow", "lock_outbox", "mark_delivered", "mark_failed", "pending_notifications"]


def pending_notifications(s: Session, now: datetime, limit: int) -> list[OutboxRow]:
    """Pending rows due at `now`, oldest first; locked with SKIP LOCKED on PostgreSQL so concurrent
    sweepers do not pick the same rows within their transactions."""
    q = (
        select(OutboxRow)
        .where(OutboxRow.state == "pending",
               or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now))  # type: ignore[union-attr]
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(s.execute(q).scalars())


def lock_outbox(s: Session, outbox_id: int) -> OutboxRow | None:
    """One outbox row, locked until the caller's transaction ends (a delivery holds it)."""
    q = select(OutboxRow).where(OutboxRow.id == outbox_id).with_for_update()
    return s.execute(q).scalar_one_or_none()


def mark_delivered(s: Session, outbox_id: int, now: datetime) -> None:
    s.execute(update(OutboxRow).where(OutboxRow.id == outbox_id)  # type: ignore[arg-type]
              .values(state="delivered", delivered_at=now, last_error=None)
              .execution_options(synchronize_session=False))
    _refresh(s, outbox_id, {"state": "delivered", "delivered_at": now, "last_error": None})


def mark_failed(s: Session, outbox_id: int, now: datetime, error: str, max_attempts: int,
                backoff_base_s: float) -> str:
    """Count a failed attempt. The n-th failure (n = attempts so far + 1) waits base * 2**(n-1)
    seconds; after `max_attempts` failures the row is dead. Returns the new state."""
    attempts = s.execute(select(OutboxRow.attempts).where(OutboxRow.id == outbox_id).with_for_update()).scalar_one()
    failures = attempts + 1
    if failures >= max_attempts:
        values: dict[str, Any] = {"state": "dead", "next_attempt_at": None}
    else:
        values = {"state": "pending", "next_attempt_at": now + timedelta(seconds=backoff_base_s * 2 ** attempts)}
    values.update(attempts=failures, last_error=error[:2000])
    s.execute(update(OutboxRow).where(OutboxRow.id == outbox_id)  # type: ignore[arg-type]
              .values(**values).execution_options(synchronize_session=False))
    _refresh(s, outbox_id, values)
    return str(values["state"])


def _refresh(s: Session, outbox_id: int, values: dict[str, Any]) -> None:
    # a row object the caller holds (from lock_outbox) must show the new state, even after the
    # session closed (so no expire-and-reload)
    obj = s.identity_map.get(s.identity_key(OutboxRow, outbox_id))  # type: ignore[arg-type]
    if obj is not None:
        for k, v in values.items():
            set_committed_value(obj, k, v)
