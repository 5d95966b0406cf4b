"""Read-side queries of the feed that the CLI does not need: keyset pages of alerts, the audit
stream, and the aggregates behind /metrics. Plain queries returning JSON-ready dicts."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitor import severity
from storage.models import OPEN_STATUSES, AlertAuditRow, AlertRow, InboxRow, OutboxRow
from storage.serialize import alert_as_dict, iso
from storage.views import severity_rank_sql

_alerts = AlertRow.__table__  # type: ignore[attr-defined]
_audit = AlertAuditRow.__table__  # type: ignore[attr-defined]
_inbox = InboxRow.__table__  # type: ignore[attr-defined]
_outbox = OutboxRow.__table__  # type: ignore[attr-defined]

SEVERITY_RANK = severity_rank_sql(_alerts.c.severity)  # monitor.severity's ranks, in SQL
SORTS = ("severity", "raised_at", "updated_at")


class CursorError(ValueError):
    pass


@dataclass(frozen=True)
class AlertFilter:
    patient_id: str | None = None
    rule: str | None = None
    severity: str | None = None
    status: str | None = None
    since: datetime | None = None  # updated_at >= since

    def digest(self) -> str:
        raw = json.dumps([self.patient_id, self.rule, self.severity, self.status, iso(self.since)])
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _sort_columns(sort: str) -> list[Any]:
    """The keyset: the sort key, then tie-breakers ending in the unique id."""
    if sort == "severity":
        return [SEVERITY_RANK, _alerts.c.raised_at, _alerts.c.id]
    if sort == "raised_at":
        return [_alerts.c.raised_at, _alerts.c.id]
    if sort == "updated_at":
        return [_alerts.c.updated_at, _alerts.c.id]
    raise ValueError(f"unknown sort {sort!r}")


def _key_values(sort: str, row: Any) -> list[Any]:
    m = row._mapping
    if sort == "severity":
        return [severity.rank(m["severity"]), m["raised_at"], m["id"]]
    return [m[sort], m["id"]]


def encode_cursor(sort: str, order: str, flt: AlertFilter, values: list[Any]) -> str:
    payload = {"s": sort, "o": order, "f": flt.digest(),
               "v": [v.isoformat() if isinstance(v, datetime) else v for v in values]}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


MAX_ID = 2**53 - 1  # row ids the API hands out (and JavaScript holds exactly)
SEVERITY_RANKS = frozenset({severity.UNKNOWN_RANK, *severity.SEVERITY_RANK.values()})  # in a cursor


def _cursor_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise ValueError
    return value


def _cursor_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError
    dt = datetime.fromisoformat(value)
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)  # a forged 0001-01-01T00:00+05:00 has no UTC instant
    except OverflowError:
        raise ValueError from None


def decode_cursor(cursor: str, sort: str, order: str, flt: AlertFilter) -> list[Any]:
    """The keyset values of a cursor made by encode_cursor; CursorError for anything else (a cursor
    comes from the client, so every value is checked for type and range before it reaches SQL)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        s, o, f, values = payload["s"], payload["o"], payload["f"], payload["v"]
        if s not in SORTS or o not in ("asc", "desc") or not isinstance(values, list):
            raise ValueError
        if len(values) != len(_sort_columns(s)):
            raise ValueError
        values[-1] = _cursor_id(values[-1])
        if s == "severity":
            if type(values[0]) is not int or values[0] not in SEVERITY_RANKS:
                raise ValueError
            values[1] = _cursor_time(values[1])
        else:
            values[0] = _cursor_time(values[0])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, UnicodeDecodeError, RecursionError):
        raise CursorError("invalid cursor") from None
    if (s, o, f) != (sort, order, flt.digest()):
        raise CursorError("the cursor belongs to another sort order or other filters; repeat them unchanged")
    return values


def _after(cols: list[Any], values: list[Any], order: str) -> Any:
    """Rows strictly after `values` in keyset order (the OR-expansion of a row-value comparison)."""
    terms = []
    for i, col in enumerate(cols):
        eq = [cols[j] == values[j] for j in range(i)]
        cmp = col > values[i] if order == "asc" else col < values[i]
        terms.append(and_(*eq, cmp))
    return or_(*terms)


def alert_page(s: Session, flt: AlertFilter, sort: str, order: str, limit: int,
               cursor: str | None) -> dict[str, Any]:
    """One page of alerts in a stable keyset order, with the cursor of the next page (or None).

    Paging by keyset (not offset) means inserts between pages neither repeat nor skip rows; an alert
    whose sort key itself changes between pages (a new updated_at, a new severity) moves in the order."""
    c = _alerts.c
    q = select(_alerts)
    if flt.patient_id is not None:
        q = q.where(c.patient_id == flt.patient_id)
    if flt.status == "open":
        q = q.where(c.status.in_(OPEN_STATUSES))
    elif flt.status is not None:
        q = q.where(c.status == flt.status)
    if flt.rule is not None:
        q = q.where(c.rule == flt.rule)
    if flt.severity is not None:
        q = q.where(c.severity == flt.severity)
    if flt.since is not None:
        q = q.where(c.updated_at >= flt.since)
    cols = _sort_columns(sort)
    if cursor:
        q = q.where(_after(cols, decode_cursor(cursor, sort, order, flt), order))
    q = q.order_by(*[col.asc() if order == "asc" else col.desc() for col in cols]).limit(limit + 1)
    rows = s.execute(q).all()
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(sort, order, flt, _key_values(sort, rows[-1])) if more and rows else None
    return {"items": [alert_as_dict(r._mapping) for r in rows], "next_cursor": nxt}


def alerts_by_ids(s: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = s.execute(select(_alerts).where(_alerts.c.id.in_(ids))) if ids else []
    return {r.id: alert_as_dict(r._mapping) for r in rows}


def last_audit_id(s: Session) -> int:
    return s.execute(select(func.coalesce(func.max(_audit.c.id), 0))).scalar_one()


def audit_after(s: Session, after_id: int, limit: int = 500, patient_id: str | None = None) -> list[dict[str, Any]]:
    """Alert changes (audit rows, oldest first) after `after_id`, each with its alert as it is now."""
    q = select(_audit).where(_audit.c.id > after_id).order_by(_audit.c.id).limit(limit)
    if patient_id is not None:
        q = q.join(_alerts, _alerts.c.id == _audit.c.alert_id).where(_alerts.c.patient_id == patient_id)
    audits = [dict(r._mapping) for r in s.execute(q)]
    alerts = alerts_by_ids(s, sorted({a["alert_id"] for a in audits}))
    return [{"event_id": a["id"], "action": a["action"], "at": iso(a["at"]), "actor": a["actor"],
             "from_status": a["from_status"], "to_status": a["to_status"], "severity": a["severity"],
             "comment": a["comment"], "details": a["details"], "alert": alerts.get(a["alert_id"])}
            for a in audits]


def metrics_snapshot(s: Session, now: datetime) -> dict[str, Any]:
    """Aggregates only (no patient data): the numbers behind GET /metrics."""
    inbox = {state: n for state, n in s.execute(select(_inbox.c.state, func.count()).group_by(_inbox.c.state))}
    oldest = s.execute(select(func.min(_inbox.c.received_at))
                       .where(_inbox.c.state.in_(("received", "processing")))).scalar_one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    alerts = s.execute(select(_alerts.c.rule, _alerts.c.severity, _alerts.c.status, func.count())
                       .group_by(_alerts.c.rule, _alerts.c.severity, _alerts.c.status)).all()
    outbox = {state: n for state, n in s.execute(select(_outbox.c.state, func.count()).group_by(_outbox.c.state))}
    return {"inbox": inbox, "queue_lag_s": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            "alerts": [tuple(r) for r in alerts], "outbox": outbox}
