"""The read side: plain queries returning JSON-ready dicts (no domain objects needed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from monitor.severity import SEVERITY_RANK, UNKNOWN_RANK
from storage.models import (
    OPEN_STATUSES,
    AlertAuditRow,
    AlertRow,
    EventRow,
    InboxRow,
    PatientRow,
    QuarantineRow,
)
from storage.serialize import alert_as_dict, iso, row_as_dict

_alerts = AlertRow.__table__  # type: ignore[attr-defined]
_audit = AlertAuditRow.__table__  # type: ignore[attr-defined]
_events = EventRow.__table__  # type: ignore[attr-defined]
_inbox = InboxRow.__table__  # type: ignore[attr-defined]
_patients = PatientRow.__table__  # type: ignore[attr-defined]
_quarantine = QuarantineRow.__table__  # type: ignore[attr-defined]



def severity_rank_sql(column: Any) -> Any:
    """monitor.severity's rank in SQL (CASE severity WHEN 'info' THEN 0 ... ELSE -1): higher is more
    severe, so the database sorts severities exactly as the engine ranks them."""
    return case(SEVERITY_RANK, value=column, else_=UNKNOWN_RANK)


SEVERITY_RANK_SQL = severity_rank_sql(_alerts.c.severity)


def list_alerts(s: Session, patient_id: str | None = None, status: str | None = None, rule: str | None = None,
                severity: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts, critical first, then the most recently raised. `status="open"` means any unresolved."""
    q = select(_alerts)
    if patient_id is not None:
        q = q.where(_alerts.c.patient_id == patient_id)
    if status == "open":
        q = q.where(_alerts.c.status.in_(OPEN_STATUSES))
    elif status is not None:
        q = q.where(_alerts.c.status == status)
    if rule is not None:
        q = q.where(_alerts.c.rule == rule)
    if severity is not None:
        q = q.where(_alerts.c.severity == severity)
    q = q.order_by(SEVERITY_RANK_SQL.desc(), _alerts.c.raised_at.desc(), _alerts.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return [alert_as_dict(r._mapping) for r in s.execute(q)]


def alert_detail(s: Session, alert_id: int) -> dict[str, Any] | None:
    """One alert with its audit trail (oldest first); None when it does not exist."""
    row = s.execute(select(_alerts).where(_alerts.c.id == alert_id)).one_or_none()
    if row is None:
        return None
    out = alert_as_dict(row._mapping)
    out["severity_at_resolution"] = row.severity_at_resolution
    out["revision"] = row.revision
    trail = s.execute(select(_audit).where(_audit.c.alert_id == alert_id).order_by(_audit.c.id))
    out["audit"] = [row_as_dict(a._mapping, exclude=("alert_id",)) for a in trail]
    return out


def patient_view(s: Session, patient_id: str, stored_summary: bool = True) -> dict[str, Any] | None:
    """The patient's row (state, risk, summary), open alerts and event counts; None when unknown.
    `stored_summary=False` leaves the stored summary out (the feed's summary computes its own)."""
    cols = [c for c in _patients.c if stored_summary or c.name != "summary"]
    row = s.execute(select(*cols).where(_patients.c.patient_id == patient_id)).one_or_none()
    if row is None:
        return None
    out = row_as_dict(row._mapping)
    out["pending_reassessment"] = row.dirty_since is not None
    out["open_alerts"] = list_alerts(s, patient_id=patient_id, status="open")
    # one pass over the patient's event rows: current ones by kind and status, and every version
    counts = s.execute(
        select(_events.c.kind, _events.c.status, _events.c.is_current, func.count())
        .where(_events.c.patient_id == patient_id)
        .group_by(_events.c.kind, _events.c.status, _events.c.is_current)
    )
    by_kind: dict[str, int] = {}
    retracted = versions = 0
    for kind, status, current, n in counts:
        versions += n
        if not current:
            continue
        if status == "entered-in-error":
            retracted += n
        else:
            by_kind[kind] = by_kind.get(kind, 0) + n
    out["events"] = {"current": by_kind, "retracted": retracted, "versions": versions}
    return out


def list_quarantine(s: Session, limit: int | None = None, inbox_id: int | None = None) -> list[dict[str, Any]]:
    """Quarantined input, newest first, with the source it came from."""
    q = (
        select(_quarantine.c.id, _quarantine.c.inbox_id, _inbox.c.source_name, _quarantine.c.line,
               _quarantine.c.field, _quarantine.c.value, _quarantine.c.reason, _quarantine.c.raw,
               _quarantine.c.created_at)
        .select_from(_quarantine.outerjoin(_inbox, _inbox.c.id == _quarantine.c.inbox_id))
        .order_by(_quarantine.c.id.desc())
    )
    if inbox_id is not None:
        q = q.where(_quarantine.c.inbox_id == inbox_id)
    if limit is not None:
        q = q.limit(limit)
    return [{k: iso(v) for k, v in r._mapping.items()} for r in s.execute(q)]


def counts_by_rule(s: Session) -> dict[str, dict[str, int]]:
    """{rule: {status: count}} over all alerts."""
    out: dict[str, dict[str, int]] = {}
    rows = s.execute(select(_alerts.c.rule, _alerts.c.status, func.count()).group_by(_alerts.c.rule, _alerts.c.status))
    for rule, status, n in rows:
        out.setdefault(rule, {})[status] = n
    return out


def inbox_view(s: Session, limit: int | None = None) -> list[dict[str, Any]]:
    """Inbox rows without their payloads, newest first (for the operator's view of ingestion)."""
    cols = [c for c in _inbox.c if c.name != "payload"]
    q = select(*cols).order_by(_inbox.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    return [{k: iso(v) for k, v in r._mapping.items()} for r in s.execute(q)]


def inbox_status(s: Session, inbox_ids: list[int]) -> list[dict[str, Any]]:
    """id, state, counts, error, attempts, source_name of the given inbox rows (in id order)."""
    c = _inbox.c
    rows = s.execute(select(c.id, c.state, c.counts, c.error, c.attempts, c.source_name, c.received_at,
                            c.processed_at).where(c.id.in_(list(inbox_ids))).order_by(c.id))
    return [{k: iso(v) for k, v in r._mapping.items()} for r in rows]
