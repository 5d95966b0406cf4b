"""Alerts: reconciliation with an assessment's findings (design.md step 6) and clinicians' actions.

Reconciliation reflects the assessment it is given: an open alert whose fingerprint the assessment
did not find is resolved, whatever as_of the alert was last seen with (callers assess as of today;
assessing a past date on purpose re-states that date's alerts). Every change bumps the alert's
`revision`, writes one audit row, and — for fired/escalated/resolved/reopened — one outbox row whose
dedupe key contains the revision: a re-run with the same inputs changes nothing and notifies nobody.

The patient's row is locked first (FOR UPDATE), so two reassessments of one patient reconcile one
after the other rather than both inserting the same fingerprint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from monitor.findings import SEVERITY_RANK, Finding
from storage._sql import chunks, upsert
from storage.models import OPEN_STATUSES, AlertAuditRow, AlertRow, OutboxRow, PatientRow
from storage.serialize import alert_as_dict

SYSTEM = "system"
_alerts = AlertRow.__table__  # type: ignore[attr-defined]
_audit = AlertAuditRow.__table__  # type: ignore[attr-defined]
_outbox = OutboxRow.__table__  # type: ignore[attr-defined]
_patients = PatientRow.__table__  # type: ignore[attr-defined]


class AlertActionError(ValueError):
    """A clinician's action that the alert's state does not allow (the message says why)."""


class AlertNotFound(AlertActionError):
    pass


@dataclass
class ReconcileResult:
    fired: int = 0
    updated: int = 0  # message/evidence changed, or severity fell (deescalated counts here too)
    escalated: int = 0
    resolved: int = 0
    reopened: int = 0
    deescalated: int = 0
    unsnoozed: int = 0

    @property
    def changed(self) -> int:
        return self.fired + self.updated + self.escalated + self.resolved + self.reopened + self.unsnoozed


def _canonical(value: Any) -> Any:
    # what the JSON column will give back (tuples become lists, keys strings), for comparisons
    return json.loads(json.dumps(value, default=str))


def _rank(severity: str | None) -> int:
    return SEVERITY_RANK.get(severity or "info", 0)


class _Tx:
    """The writes of one reconciliation or action, sharing `now` and the actor."""

    def __init__(self, s: Session, now: datetime, actor: str):
        self.s, self.now, self.actor = s, now, actor
        self.seen_again: list[int] = []  # alerts found again unchanged: only their as_of moves

    def change(self, alert: dict[str, Any], **values: Any) -> None:
        values.setdefault("updated_at", self.now)
        values["revision"] = alert["revision"] + 1
        self.s.execute(update(_alerts).where(_alerts.c.id == alert["id"]).values(**values))
        alert.update(values)

    def audit(self, alert: dict[str, Any], action: str, from_status: str | None, comment: str | None = None,
              details: dict[str, Any] | None = None) -> None:
        self.s.execute(insert(_audit).values(
            alert_id=alert["id"], at=self.now, actor=self.actor, action=action, from_status=from_status,
            to_status=alert["status"], severity=alert["severity"], comment=comment, details=details,
        ))

    def notify(self, alert: dict[str, Any], kind: str) -> None:
        key = f"{alert['id']}:{kind}:{alert['severity']}:{alert['revision']}"
        self.s.execute(
            upsert(self.s, _outbox).values(
                alert_id=alert["id"], kind=kind, payload=alert_as_dict(alert), dedupe_key=key,
                state="pending", attempts=0, next_attempt_at=self.now, created_at=self.now,
            ).on_conflict_do_nothing(index_elements=["dedupe_key"])
        )


def _finding_values(f: Finding, as_of: date) -> dict[str, Any]:
    return {"severity": f.severity, "message": f.message, "reference": f.reference,
            "evidence": _canonical([e.as_dict() for e in f.evidence]), "as_of": as_of}


def reconcile_alerts(s: Session, patient_id: str, findings: list[Finding], as_of: date,
                     now: datetime) -> ReconcileResult:
    """Bring the patient's alerts in line with the findings of one assessment (module docstring)."""
    return reconcile_many(s, {patient_id: findings}, as_of, now)[patient_id]


def reconcile_many(s: Session, findings_by_patient: dict[str, list[Finding]], as_of: date,
                   now: datetime) -> dict[str, ReconcileResult]:
    """reconcile_alerts for a chunk of patients: their rows locked and their alerts read in one query
    each, and the quiet "seen again as of" updates written in one statement."""
    pids = sorted(findings_by_patient)
    tx = _Tx(s, now, SYSTEM)
    existing: dict[str, dict[str, dict[str, Any]]] = {pid: {} for pid in pids}
    for part in chunks(pids):
        s.execute(select(_patients.c.patient_id).where(_patients.c.patient_id.in_(part))
                  .order_by(_patients.c.patient_id).with_for_update())
        for r in s.execute(select(_alerts).where(_alerts.c.patient_id.in_(part)).with_for_update()):
            existing[r.patient_id][r.fingerprint] = dict(r._mapping)
    results = {pid: _reconcile(tx, pid, findings_by_patient[pid], existing[pid], as_of)
               for pid in pids}
    for part in chunks(tx.seen_again):
        s.execute(update(_alerts).where(_alerts.c.id.in_(part)).values(as_of=as_of))
    return results


def _reconcile(tx: _Tx, patient_id: str, findings: list[Finding], existing: dict[str, dict[str, Any]],
               as_of: date) -> ReconcileResult:
    result = ReconcileResult()
    now = tx.now
    for alert in existing.values():
        if alert["status"] == "snoozed" and alert["snoozed_until"] is not None and alert["snoozed_until"] < now:
            tx.change(alert, status="firing", snoozed_until=None)
            tx.audit(alert, "unsnoozed", "snoozed", details={"reason": "snooze expired"})
            result.unsnoozed += 1

    wanted: dict[str, Finding] = {}
    for f in findings:
        if f.patient_id != patient_id:
            raise ValueError(f"finding {f.fingerprint} is not about patient {patient_id}")
        held = wanted.get(f.fingerprint)
        if held is None or _rank(f.severity) > _rank(held.severity):
            wanted[f.fingerprint] = f

    for fp, f in wanted.items():
        alert = existing.get(fp)
        if alert is None:
            _fire(tx, f, as_of)
            result.fired += 1
        elif alert["status"] in OPEN_STATUSES:
            _refresh_open(tx, alert, f, as_of, result)
        else:
            _maybe_reopen(tx, alert, f, as_of, result)

    for fp, alert in existing.items():
        if fp not in wanted and alert["status"] in OPEN_STATUSES:
            before = alert["status"]
            tx.change(alert, status="resolved", resolved_at=now, resolution="auto",
                      resolved_reason=f"condition no longer met as of {as_of.isoformat()}",
                      severity_at_resolution=alert["severity"], snoozed_until=None, as_of=as_of)
            tx.audit(alert, "resolved", before, details={"resolution": "auto", "as_of": as_of.isoformat()})
            tx.notify(alert, "resolved")
            result.resolved += 1
    return result


def _fire(tx: _Tx, f: Finding, as_of: date) -> None:
    values = {"fingerprint": f.fingerprint, "patient_id": f.patient_id, "rule": f.rule, "episode": f.episode,
              "status": "firing", "raised_at": tx.now, "updated_at": tx.now, "revision": 1,
              **_finding_values(f, as_of)}
    new_id = tx.s.execute(insert(_alerts).values(**values).returning(_alerts.c.id)).scalar_one()
    alert = {c.name: None for c in _alerts.columns} | values | {"id": new_id}
    # the clinical date it fired for (raised_at is wall-clock time): the outcome report dates alerts by it
    tx.audit(alert, "fired", None, details={"as_of": as_of.isoformat()})
    tx.notify(alert, "fired")


def _refresh_open(tx: _Tx, alert: dict[str, Any], f: Finding, as_of: date, result: ReconcileResult) -> None:
    new = _finding_values(f, as_of)
    before_status, before_sev = alert["status"], alert["severity"]
    if _rank(f.severity) > _rank(before_sev):
        # a rise in severity breaks an acknowledgement or a snooze: someone must look again
        tx.change(alert, status="firing", snoozed_until=None, **new)
        tx.audit(alert, "escalated", before_status, details={"from_severity": before_sev})
        tx.notify(alert, "escalated")
        result.escalated += 1
    elif _rank(f.severity) < _rank(before_sev):
        tx.change(alert, **new)
        tx.audit(alert, "deescalated", before_status, details={"from_severity": before_sev})
        result.deescalated += 1
        result.updated += 1
    elif any(alert[k] != new[k] for k in ("message", "evidence", "reference")):
        tx.change(alert, **new)
        tx.audit(alert, "updated", before_status)
        result.updated += 1
    elif alert["as_of"] != as_of:
        # seen again, nothing new: record when without a revision, audit row or notification
        tx.seen_again.append(alert["id"])
        alert["as_of"] = as_of


def _maybe_reopen(tx: _Tx, alert: dict[str, Any], f: Finding, as_of: date, result: ReconcileResult) -> None:
    manual = alert["resolution"] == "manual"
    if manual and _rank(f.severity) <= _rank(alert["severity_at_resolution"]):
        # a clinician closed it knowingly; it stays closed until it gets worse than it was then
        if alert["as_of"] != as_of:
            tx.seen_again.append(alert["id"])
            alert["as_of"] = as_of
        return
    details = {"resolution_was": alert["resolution"], "resolved_at": _iso(alert["resolved_at"]),
               "severity_at_resolution": alert["severity_at_resolution"]}
    tx.change(alert, status="firing", resolved_at=None, resolution=None, resolved_reason=None,
              severity_at_resolution=None, snoozed_until=None, acknowledged_by=None, **_finding_values(f, as_of))
    tx.audit(alert, "reopened", "resolved", details=details)
    tx.notify(alert, "reopened")
    result.reopened += 1


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


# ----------------------------------------------------------------------------- clinicians' actions


def _load(s: Session, alert_id: int) -> dict[str, Any]:
    row = s.execute(select(_alerts).where(_alerts.c.id == alert_id).with_for_update()).one_or_none()
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return dict(row._mapping)


def _actor(actor: str) -> str:
    if not actor or not actor.strip():
        raise AlertActionError("an action needs the name of who takes it")
    return actor.strip()


def _clock(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def acknowledge(s: Session, alert_id: int, actor: str, comment: str | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    alert = _load(s, alert_id)
    if alert["status"] == "resolved":
        raise AlertActionError(f"alert {alert_id} is resolved; it cannot be acknowledged")
    if alert["status"] == "acknowledged":
        raise AlertActionError(f"alert {alert_id} is already acknowledged (by {alert['acknowledged_by']})")
    tx = _Tx(s, _clock(now), _actor(actor))
    before = alert["status"]
    tx.change(alert, status="acknowledged", acknowledged_by=tx.actor, snoozed_until=None)
    tx.audit(alert, "acknowledged", before, comment)
    return alert_as_dict(alert)


def snooze(s: Session, alert_id: int, until: datetime, actor: str, comment: str | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    alert = _load(s, alert_id)
    if alert["status"] == "resolved":
        raise AlertActionError(f"alert {alert_id} is resolved; it cannot be snoozed")
    tx = _Tx(s, _clock(now), _actor(actor))
    if until.tzinfo is None:
        raise AlertActionError("snooze until needs a time zone")
    if until <= tx.now:
        raise AlertActionError(f"snooze until {until.isoformat()} is not in the future")
    before = alert["status"]
    tx.change(alert, status="snoozed", snoozed_until=until)
    tx.audit(alert, "snoozed", before, comment, details={"until": until.isoformat()})
    return alert_as_dict(alert)


def resolve(s: Session, alert_id: int, actor: str, comment: str, now: datetime | None = None) -> dict[str, Any]:
    if not comment or not comment.strip():
        raise AlertActionError("resolving an alert by hand needs a comment saying why")
    alert = _load(s, alert_id)
    if alert["status"] == "resolved":
        raise AlertActionError(f"alert {alert_id} is already resolved")
    tx = _Tx(s, _clock(now), _actor(actor))
    before = alert["status"]
    tx.change(alert, status="resolved", resolved_at=tx.now, resolution="manual", resolved_reason=comment.strip(),
              severity_at_resolution=alert["severity"], snoozed_until=None)
    tx.audit(alert, "resolved", before, comment.strip(), details={"resolution": "manual"})
    return alert_as_dict(alert)


def assign(s: Session, alert_id: int, assignee: str, actor: str, now: datetime | None = None) -> dict[str, Any]:
    alert = _load(s, alert_id)
    if alert["status"] == "resolved":
        raise AlertActionError(f"alert {alert_id} is resolved; it cannot be assigned")
    tx = _Tx(s, _clock(now), _actor(actor))
    assignee = (assignee or "").strip()
    if not assignee:
        raise AlertActionError("assign needs an assignee")
    if alert["assigned_to"] == assignee:
        return alert_as_dict(alert)  # nothing changes: no audit row
    previous = alert["assigned_to"]
    tx.change(alert, assigned_to=assignee)
    tx.audit(alert, "assigned", alert["status"], details={"from": previous, "to": assignee})
    return alert_as_dict(alert)


def comment(s: Session, alert_id: int, actor: str, text: str, now: datetime | None = None) -> dict[str, Any]:
    if not text or not text.strip():
        raise AlertActionError("a comment cannot be empty")
    alert = _load(s, alert_id)
    tx = _Tx(s, _clock(now), _actor(actor))
    # a comment changes nothing about the alert itself: audit row only, no revision
    tx.audit(alert, "commented", alert["status"], text.strip())
    return alert_as_dict(alert)
