"""Read side of the clinic outcome report: stored per-course outcomes and alerts on the clinical axis.

The nightly assessment stores every patient's course outcomes in `patients.summary["courses"]`
(monitor.outcomes via Assessment.summary); reading them is one pass over the patients table instead
of rebuilding 100,000 timelines. Whoever calls stored_course_outcomes recomputes the patients it
lists as not current (tasks/report.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage._sql import chunks
from storage.models import AlertAuditRow, AlertRow, PatientRow

_patients = PatientRow.__table__  # type: ignore[attr-defined]
_alerts = AlertRow.__table__  # type: ignore[attr-defined]
_audit = AlertAuditRow.__table__  # type: ignore[attr-defined]
READ_CHUNK = 5000


def latest_assessment_date(s: Session) -> date | None:
    """The most recent date any patient was assessed for (the nightly run's as_of)."""
    return s.execute(select(func.max(_patients.c.last_as_of))).scalar()


def stored_course_outcomes(s: Session, as_of: date) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """({patient: stored course outcomes} of the patients whose stored assessment is for `as_of` with
    nothing pending, [the other patients]): those must be recomputed from their timelines (assessed
    for another date, events stored since, or assessed before outcomes were stored)."""
    c = _patients.c
    stored: dict[str, list[dict[str, Any]]] = {}
    stale: list[str] = []
    after = ""
    while True:  # keyset pages: a bounded result set per round trip, whatever the cohort size
        rows = s.execute(
            select(c.patient_id, c.last_as_of, c.dirty_since, c.summary["courses"].label("courses"))
            .where(c.patient_id > after).order_by(c.patient_id).limit(READ_CHUNK)
        ).all()
        if not rows:
            break
        for pid, last_as_of, dirty, courses in rows:
            if last_as_of == as_of and dirty is None and isinstance(courses, list):
                stored[pid] = courses
            else:
                stale.append(pid)
        after = rows[-1].patient_id
    return stored, stale


def alert_marks(s: Session) -> list[tuple[str, date, str]]:
    """(patient, clinical date, severity) of every alert. The clinical date is the as_of it first
    fired for (recorded in its 'fired' audit row); for alerts fired before that was recorded, the
    date of the newest result behind it, capped at the alert's as_of."""
    a, au = _alerts.c, _audit.c
    rows = s.execute(
        select(a.id, a.patient_id, a.severity, au.details)
        .select_from(_alerts.outerjoin(_audit, (au.alert_id == a.id) & (au.action == "fired")))
    ).all()
    out: list[tuple[str, date, str]] = []
    undated: list[int] = []
    seen: set[int] = set()
    for alert_id, pid, severity, details in rows:
        if alert_id in seen:
            continue
        seen.add(alert_id)
        when = (details or {}).get("as_of") if isinstance(details, dict) else None
        if when:
            out.append((pid, date.fromisoformat(when), severity))
        else:
            undated.append(alert_id)
    for part in chunks(undated):
        for pid, severity, evidence, as_of in s.execute(
                select(a.patient_id, a.severity, a.evidence, a.as_of).where(a.id.in_(list(part)))):
            out.append((pid, _newest_evidence(evidence, as_of), severity))
    return out


def _newest_evidence(evidence: Any, as_of: date) -> date:
    days = []
    for e in evidence or []:
        raw = e.get("effective_at") if isinstance(e, dict) else None
        if isinstance(raw, str) and len(raw) >= 10:
            try:
                days.append(date.fromisoformat(raw[:10]))
            except ValueError:
                continue
    return min(max(days), as_of) if days else as_of


def report_stamp(s: Session) -> tuple[Any, ...]:
    """Changes whenever an assessment, a pending mark or an alert changes: a cached report built under
    the same stamp is still the report."""
    p, a = _patients.c, _alerts.c
    row = s.execute(select(func.count(), func.max(p.last_assessed_at), func.max(p.dirty_since),
                           func.count(p.dirty_since))).one()
    alerts = s.execute(select(func.count(), func.max(a.updated_at))).one()
    return tuple(_plain(v) for v in (*row, *alerts))


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (date, datetime)) else v
