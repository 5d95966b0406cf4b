"""Webhook subscriptions and their deliveries (the clinician feed's consumers).

Fan-out: every outbox row (one patient's alert group) created after a subscription was created, with
at least one change matching its filters (monitor.notifications.route), gets one `webhook_deliveries`
row for it; the delivery carries the matching changes only; UNIQUE(subscription_id, outbox_id) plus ON CONFLICT DO NOTHING make
the fan-out idempotent, so it may run in every sweep and in several processes at once. It reads the
outbox rows of the last FANOUT_LOOKBACK (not "ids above a cursor": ids are allocated before commit,
so a cursor could step over a row whose transaction commits late).

Delivery claims a row with a compare-and-set that also pushes next_attempt_at out by a lease, posts
outside any transaction (a slow receiver holds no lock), then records the outcome. A process that
dies mid-post leaves the row to be retried when the lease expires: at-least-once delivery, and
receivers deduplicate on the delivery id (X-IMN-Delivery).

The secret is stored in clear because it is the HMAC key (see WebhookSubscriptionRow).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from monitor import notifications
from storage._sql import upsert
from storage.models import OutboxRow, WebhookDeliveryRow, WebhookSubscriptionRow
from storage.serialize import iso

FANOUT_LOOKBACK = timedelta(days=2)
CLAIM_LEASE = timedelta(seconds=120)  # longer than any HTTP attempt (10 s timeout)

_subs = WebhookSubscriptionRow.__table__  # type: ignore[attr-defined]
_deliv = WebhookDeliveryRow.__table__  # type: ignore[attr-defined]
_outbox = OutboxRow.__table__  # type: ignore[attr-defined]


class SubscriptionError(ValueError):
    """A subscription that cannot be created as asked (the message says why)."""


@dataclass(frozen=True)
class Claimed:
    """What a delivery attempt needs, read in the claiming transaction."""

    delivery_id: int
    subscription_id: int
    outbox_id: int
    url: str
    secret: str
    attempts: int
    kind: str
    payload: dict[str, Any]  # the whole group (monitor.notifications.group_document)
    filters: dict[str, Any]  # the subscription's: deliver notifications.route(filters, payload)


def normalise_filters(filters: dict[str, Any] | None) -> dict[str, list[str]]:
    try:
        return notifications.normalise_filters(filters)
    except notifications.FilterError as exc:
        raise SubscriptionError(str(exc)) from None


def subscription_as_dict(row: Any) -> dict[str, Any]:
    m = row._mapping if hasattr(row, "_mapping") else row
    return {"id": m["id"], "name": m["name"], "url": m["url"], "filters": m["filters"] or {},
            "active": m["active"], "created_at": iso(m["created_at"]),
            "deactivated_at": iso(m["deactivated_at"])}


def create_subscription(s: Session, name: str, url: str, filters: dict[str, Any] | None, now: datetime,
                        secret: str | None = None) -> tuple[dict[str, Any], str]:
    """A new active subscription; returns it and its secret (generated when not given)."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise SubscriptionError("a subscription needs a name of 1 to 200 characters")
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 2000:
        raise SubscriptionError("url must be an absolute http(s) URL of at most 2000 characters")
    if secret is None:
        secret = secrets.token_urlsafe(32)
    if not 16 <= len(secret) <= 200:
        raise SubscriptionError("secret must be 16 to 200 characters")
    values = {"name": name, "url": url, "secret": secret, "filters": normalise_filters(filters),
              "active": True, "created_at": now}
    new_id = s.execute(insert(_subs).values(**values).returning(_subs.c.id)).scalar_one()
    return subscription_as_dict({**values, "id": new_id, "deactivated_at": None}), secret


def list_subscriptions(s: Session, include_inactive: bool = False) -> list[dict[str, Any]]:
    q = select(_subs).order_by(_subs.c.id)
    if not include_inactive:
        q = q.where(_subs.c.active.is_(True))
    return [subscription_as_dict(r) for r in s.execute(q)]


def get_subscription(s: Session, sub_id: int) -> dict[str, Any] | None:
    row = s.execute(select(_subs).where(_subs.c.id == sub_id)).one_or_none()
    return subscription_as_dict(row) if row is not None else None


def deactivate_subscription(s: Session, sub_id: int, now: datetime) -> bool:
    """Stop a subscription (its delivery history stays visible); its pending deliveries go dead.
    False when it does not exist or was already inactive."""
    n = s.execute(update(_subs).where(_subs.c.id == sub_id, _subs.c.active.is_(True))
                  .values(active=False, deactivated_at=now)).rowcount
    if n:
        s.execute(update(_deliv).where(_deliv.c.subscription_id == sub_id, _deliv.c.state == "pending")
                  .values(state="dead", next_attempt_at=None, last_error="subscription deactivated"))
    return bool(n)


def list_deliveries(s: Session, sub_id: int, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    c = _deliv.c
    q = (select(c.id, c.outbox_id, c.state, c.attempts, c.next_attempt_at, c.last_error, c.created_at,
                c.delivered_at, _outbox.c.kind, _outbox.c.patient_id, _outbox.c.alert_id)
         .select_from(_deliv.join(_outbox, _outbox.c.id == c.outbox_id))
         .where(c.subscription_id == sub_id).order_by(c.id.desc()).limit(limit))
    if state is not None:
        q = q.where(c.state == state)
    return [{k: iso(v) for k, v in r._mapping.items()} for r in s.execute(q)]


def any_active(s: Session) -> bool:
    return s.execute(select(_subs.c.id).where(_subs.c.active.is_(True)).limit(1)).first() is not None


def fan_out(s: Session, now: datetime, limit: int = 5000) -> int:
    """Create the missing delivery rows of every active subscription; returns how many were created."""
    subs = list(s.execute(select(_subs.c.id, _subs.c.filters, _subs.c.created_at)
                          .where(_subs.c.active.is_(True))))
    if not subs:
        return 0
    since = now - FANOUT_LOOKBACK
    created = 0
    for sub in subs:
        missing = s.execute(
            select(_outbox.c.id, _outbox.c.payload)
            .select_from(_outbox.outerjoin(_deliv, and_(_deliv.c.outbox_id == _outbox.c.id,
                                                        _deliv.c.subscription_id == sub.id)))
            .where(_outbox.c.created_at >= max(since, sub.created_at), _deliv.c.id.is_(None))
            .order_by(_outbox.c.id).limit(limit)
        )
        rows = [{"subscription_id": sub.id, "outbox_id": r.id, "state": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now}
                for r in missing if notifications.route(sub.filters or {}, r.payload or {}) is not None]
        if rows:
            res = s.execute(upsert(s, _deliv).values(rows)
                            .on_conflict_do_nothing(index_elements=["subscription_id", "outbox_id"]))
            created += max(res.rowcount or 0, 0)
    return created


def due_deliveries(s: Session, now: datetime, limit: int = 500) -> list[int]:
    c = _deliv.c
    q = (select(c.id).where(c.state == "pending", or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now))
         .order_by(c.next_attempt_at, c.id).limit(limit))
    return list(s.execute(q).scalars())


def claim_delivery(s: Session, delivery_id: int, now: datetime) -> Claimed | None:
    """Take a due pending delivery for one attempt (compare-and-set, lease); None when it is not due,
    not pending, taken by someone else, or its subscription is inactive."""
    c = _deliv.c
    n = s.execute(update(_deliv).where(c.id == delivery_id, c.state == "pending",
                                       or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now))
                  .values(next_attempt_at=now + CLAIM_LEASE)).rowcount
    if not n:
        return None
    r = s.execute(
        select(c.id, c.subscription_id, c.outbox_id, c.attempts, _subs.c.url, _subs.c.secret, _subs.c.active,
               _subs.c.filters, _outbox.c.kind, _outbox.c.payload)
        .select_from(_deliv.join(_subs, _subs.c.id == c.subscription_id).join(_outbox, _outbox.c.id == c.outbox_id))
        .where(c.id == delivery_id)
    ).one()
    if not r.active:
        s.execute(update(_deliv).where(c.id == delivery_id)
                  .values(state="dead", next_attempt_at=None, last_error="subscription deactivated"))
        return None
    return Claimed(r.id, r.subscription_id, r.outbox_id, r.url, r.secret, r.attempts, r.kind, r.payload,
                   r.filters or {})


def mark_delivery_done(s: Session, delivery_id: int, now: datetime) -> None:
    s.execute(update(_deliv).where(_deliv.c.id == delivery_id, _deliv.c.state == "pending")
              .values(state="delivered", delivered_at=now, next_attempt_at=None, last_error=None,
                      attempts=_deliv.c.attempts + 1))


def mark_delivery_failed(s: Session, delivery_id: int, now: datetime, error: str, max_attempts: int,
                         backoff_base_s: float) -> str:
    """Count a failed attempt: the n-th failure waits base * 2**(n-1) s; the max_attempts-th is dead."""
    attempts = s.execute(select(_deliv.c.attempts).where(_deliv.c.id == delivery_id)).scalar_one()
    failures = attempts + 1
    if failures >= max_attempts:
        values: dict[str, Any] = {"state": "dead", "next_attempt_at": None}
    else:
        values = {"state": "pending", "next_attempt_at": now + timedelta(seconds=backoff_base_s * 2 ** attempts)}
    values.update(attempts=failures, last_error=error[:2000])
    s.execute(update(_deliv).where(_deliv.c.id == delivery_id, _deliv.c.state == "pending").values(**values))
    return str(values["state"])


def delivery_counts(s: Session, sub_id: int) -> dict[str, int]:
    rows = s.execute(select(_deliv.c.state, func.count()).where(_deliv.c.subscription_id == sub_id)
                     .group_by(_deliv.c.state))
    return {state: n for state, n in rows}
