"""Outbox -> webhook, signed with HMAC-SHA256 over timestamp and body.

Body: one patient's alert group (monitor/notifications.py) with the delivery id,
{"delivery_id", "kind": "alert_group", "version": 1, "group", "patient_id", "cause", "as_of", "at",
"changes": [{"change", "alert"}, ...]}. Headers: X-IMN-Delivery (outbox id, stable across retries:
receivers deduplicate on it), X-IMN-Timestamp (unix seconds), X-IMN-Signature: sha256=<hex of HMAC(secret, f"{timestamp}.{body}")>.
A failed delivery is not retried by a countdown (pitfall: held by the worker, redelivered twice);
it gets next_attempt_at with exponential backoff and the sweeper re-drives it when due.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime
from typing import Any

import httpx

from storage import repository as repo
from storage.db import session
from tasks import url_safety
from tasks.ingest import utcnow
from tasks.runtime import Runtime

log = logging.getLogger("imn.notify")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def post_signed(url: str, secret: bytes, delivery_id: int, document: dict[str, Any],
                client: httpx.Client | None = None, allow_private: bool = False) -> str | None:
    """POST one signed notification; None when the receiver took it (2xx), else why not. The target
    is checked and pinned first (tasks.url_safety): a host that now resolves to a non-public address
    is refused, unless allow_private. The reason never contains the URL's credentials."""
    try:
        target = url_safety.pin(url, allow_private)
    except url_safety.UnsafeUrl as exc:
        return f"refused: {exc}"[:500]
    body = json.dumps(document, sort_keys=True, default=str).encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-IMN-Delivery": str(delivery_id),
               "X-IMN-Timestamp": ts, "X-IMN-Signature": sign(secret, ts, body), **target.headers}
    try:
        own = client or httpx.Client(timeout=10)
        try:
            resp = own.post(target.url, content=body, headers=headers, extensions=target.extensions)
        finally:
            if client is None:
                own.close()
    except httpx.HTTPError as exc:
        return url_safety.scrub(f"{type(exc).__name__}: {exc}", url)[:500]
    return None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"


def deliver(rt: Runtime, outbox_id: int, client: httpx.Client | None = None) -> str:
    """Deliver one outbox row; returns its new state (delivered, pending, dead or skipped)."""
    st = rt.settings
    if not st.webhook_url:
        return "skipped"
    now = utcnow()
    with session(rt.engine) as s:
        row = repo.lock_outbox(s, outbox_id)
        if row is None or row.state != "pending" or (row.next_attempt_at and row.next_attempt_at > now):
            return row.state if row is not None else "missing"
        secret = st.webhook_secret.get_secret_value().encode() if st.webhook_secret else b""
        error = post_signed(st.webhook_url, secret, row.id, {"delivery_id": row.id, **row.payload}, client,
                            allow_private=st.webhook_allow_private)
        if error is None:
            repo.mark_delivered(s, row.id, now)
            return "delivered"
        state = repo.mark_failed(s, row.id, now, error, st.webhook_max_attempts, st.webhook_backoff_s)
        log.warning("outbox %s delivery failed (%s); now %s", row.id, error, state)
        return state


def due_notifications(rt: Runtime, now: datetime, limit: int = 500) -> list[int]:
    with session(rt.engine) as s:
        return [r.id for r in repo.pending_notifications(s, now, limit)]
