"""Outbox -> every matching webhook subscription (storage/subscriptions.py for the fan-out rules).

Each delivery is signed exactly like the single IMN_WEBHOOK_URL path (tasks.notify.sign): headers
X-IMN-Delivery (the delivery id: stable across retries, receivers deduplicate on it),
X-IMN-Timestamp (unix seconds), X-IMN-Signature: sha256=<hex HMAC(secret, f"{timestamp}.{body}")>,
with the subscription's own secret. Body: the patient's alert group with only the changes the
subscription's filters match (monitor.notifications.route), plus "delivery_id" and "outbox_id". A failed
attempt gets next_attempt_at with exponential backoff (IMN_WEBHOOK_BACKOFF_S * 2**(n-1)) and is dead
after IMN_WEBHOOK_MAX_ATTEMPTS; the sweeper re-drives due deliveries.
"""

from __future__ import annotations

import logging

import httpx

from monitor import notifications
from storage import subscriptions as subs
from storage.db import session
from tasks.ingest import utcnow
from tasks.notify import post_signed
from tasks.runtime import Runtime

log = logging.getLogger("imn.webhooks")


def fan_out(rt: Runtime) -> int:
    with session(rt.engine, write=False) as s:
        if not subs.any_active(s):
            return 0  # the common case costs one read, no write lock
    with session(rt.engine) as s:
        return subs.fan_out(s, utcnow())


def due(rt: Runtime, limit: int = 500) -> list[int]:
    with session(rt.engine, write=False) as s:
        return subs.due_deliveries(s, utcnow(), limit)


def deliver(rt: Runtime, delivery_id: int, client: httpx.Client | None = None) -> str:
    """One attempt of one delivery; returns delivered, pending (will retry), dead or skipped."""
    st = rt.settings
    with session(rt.engine) as s:
        job = subs.claim_delivery(s, delivery_id, utcnow())
    if job is None:
        return "skipped"
    # fan-out created this delivery because some change matched, and filters never change
    document = notifications.route(job.filters, job.payload) or {**job.payload, "changes": []}
    error = post_signed(job.url, job.secret.encode(), job.delivery_id,
                        {"delivery_id": job.delivery_id, "outbox_id": job.outbox_id, **document}, client,
                        allow_private=st.webhook_allow_private)
    with session(rt.engine) as s:
        if error is None:
            subs.mark_delivery_done(s, job.delivery_id, utcnow())
            return "delivered"
        state = subs.mark_delivery_failed(s, job.delivery_id, utcnow(), error, st.webhook_max_attempts,
                                          st.webhook_backoff_s)
    log.warning("webhook delivery %s (subscription %s) failed (%s); now %s", job.delivery_id,
                job.subscription_id, error, state)
    return state


def deliver_due(rt: Runtime) -> dict[str, int]:
    """Fan out, then attempt every due delivery here (the embedded default)."""
    fan_out(rt)
    out: dict[str, int] = {}
    ids = due(rt)
    if ids:
        with httpx.Client(timeout=10) as client:
            for delivery_id in ids:
                state = deliver(rt, delivery_id, client)
                out[state] = out.get(state, 0) + 1
    return out
