"""Alerts: load a patient's alerts, let the lifecycle decide (monitor/alerts.py), persist what it decided.

Nothing here decides anything about an alert. Every entry point locks the patients' rows first (FOR
UPDATE, in patient_id order: two passes over one patient run one after the other, and never deadlock),
reads all of their alerts, calls one pure function per patient, and writes its Changes in the
caller's transaction:
- new alerts inserted, changed alerts updated (each change has bumped the alert's `revision`);
- one `alert_audit` row per change;
- the as_of of alerts merely seen again, in one statement;
- one `outbox` row per patient that has notifications: the patient's alert group
  (monitor/notifications.py), whose dedupe key holds the changes' revisions, so a replay adds nothing.
Everything is written in batches for the whole chunk of patients (the nightly reconciles thousands).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from monitor import alerts as lifecycle
from monitor import notifications
from monitor.alerts import Alert, AlertActionError, AlertNotFound, Changes, ReconcileResult
from monitor.findings import Finding
from storage._sql import chunks, upsert
from storage.models import AlertAuditRow, AlertRow, OutboxRow, PatientRow
from storage.serialize import alert_as_dict

__all__ = ["AlertActionError", "AlertNotFound", "ReconcileResult", "acknowledge", "assign", "comment",
           "expire_snoozes", "reconcile_alerts", "reconcile_many", "resolve", "snooze"]

_alerts = AlertRow.__table__  # type: ignore[attr-defined]
_audit = AlertAuditRow.__table__  # type: ignore[attr-defined]
_outbox = OutboxRow.__table__  # type: ignore[attr-defined]
_patients = PatientRow.__table__  # type: ignore[attr-defined]

# the alert columns a change may write (everything but the identity and raised_at)
_MUTABLE = ("severity", "status", "message", "evidence", "reference", "as_of", "updated_at", "revision",
            "resolved_at", "resolution", "resolved_reason", "severity_at_resolution", "snoozed_until",
            "assigned_to", "acknowledged_by", "inhibited_by", "inhibited_by_fingerprint")
_update_by_id = (update(_alerts).where(_alerts.c.id == bindparam("b_id"))
                 .values({c: bindparam(f"b_{c}") for c in _MUTABLE}))


# ----------------------------------------------------------------------------- rows <-> values


def _to_alert(m: Any) -> Alert:
    return Alert(
        fingerprint=m["fingerprint"], patient_id=m["patient_id"], rule=m["rule"], episode=m["episode"],
        severity=m["severity"], status=m["status"], message=m["message"], evidence=tuple(m["evidence"] or ()),
        reference=m["reference"], as_of=m["as_of"], raised_at=m["raised_at"], updated_at=m["updated_at"],
        revision=m["revision"], resolved_at=m["resolved_at"], resolution=m["resolution"],
        resolved_reason=m["resolved_reason"], severity_at_resolution=m["severity_at_resolution"],
        snoozed_until=m["snoozed_until"], assigned_to=m["assigned_to"], acknowledged_by=m["acknowledged_by"],
        inhibited_by=m["inhibited_by_fingerprint"], id=m["id"])


def _values(a: Alert, ids: dict[str, int]) -> dict[str, Any]:
    """The row of an alert (inhibited_by resolved to the inhibitor's id when it has one yet)."""
    return {"id": a.id, "fingerprint": a.fingerprint, "patient_id": a.patient_id, "rule": a.rule,
            "episode": a.episode, "severity": a.severity, "status": a.status, "message": a.message,
            "evidence": [dict(e) for e in a.evidence], "reference": a.reference, "as_of": a.as_of,
            "raised_at": a.raised_at, "updated_at": a.updated_at, "revision": a.revision,
            "resolved_at": a.resolved_at, "resolution": a.resolution, "resolved_reason": a.resolved_reason,
            "severity_at_resolution": a.severity_at_resolution, "snoozed_until": a.snoozed_until,
            "assigned_to": a.assigned_to, "acknowledged_by": a.acknowledged_by,
            "inhibited_by": ids.get(a.inhibited_by) if a.inhibited_by else None,
            "inhibited_by_fingerprint": a.inhibited_by}


# ------------------------------------------------------------------------------------ loading


def _lock_and_load(s: Session, patient_ids: list[str]) -> dict[str, list[Alert]]:
    """Lock the patients' rows (in id order) and read all of their alerts, locked too."""
    loaded: dict[str, list[Alert]] = {pid: [] for pid in patient_ids}
    for part in chunks(sorted(patient_ids)):
        s.execute(select(_patients.c.patient_id).where(_patients.c.patient_id.in_(part))
                  .order_by(_patients.c.patient_id).with_for_update())
        for r in s.execute(select(_alerts).where(_alerts.c.patient_id.in_(part))
                           .order_by(_alerts.c.id).with_for_update()):
            loaded[r.patient_id].append(_to_alert(r._mapping))
    return loaded


# ----------------------------------------------------------------------------------- persisting


def _persist(s: Session, passes: list[Changes], loaded: dict[str, list[Alert]], now: datetime, cause: str,
             as_of: date | None) -> dict[str, dict[str, Alert]]:
    """Write the passes' changes (module docstring); returns each patient's changed alerts, final."""
    before = {a.fingerprint: a for alerts in loaded.values() for a in alerts}
    ids: dict[str, int] = {fp: a.id for fp, a in before.items() if a.id is not None}
    finals = {ch.patient_id: ch.final() for ch in passes}
    changed = [a for final in finals.values() for a in final.values()]

    new = [a for a in changed if a.id is None]
    if new:
        rows = [{k: v for k, v in _values(a, ids).items() if k != "id"} for a in new]
        returned = s.execute(insert(_alerts).returning(_alerts.c.id, _alerts.c.fingerprint,
                                                       sort_by_parameter_order=True), rows)
        ids.update({r.fingerprint: r.id for r in returned})
    # changed alerts, and new ones whose inhibitor was new too (its id was not known at their insert)
    updates = [a for a in changed if (a.id is not None and a != before[a.fingerprint])
               or (a.id is None and a.inhibited_by is not None and a.inhibited_by not in before)]
    if updates:
        params = []
        for a in updates:
            v = _values(a, ids)
            params.append({"b_id": ids[a.fingerprint], **{f"b_{c}": v[c] for c in _MUTABLE}})
        s.execute(_update_by_id, params)

    audit = [{"alert_id": ids[c.alert.fingerprint], "at": now, "actor": c.actor, "action": c.action,
              "from_status": c.from_status, "to_status": c.alert.status, "severity": c.alert.severity,
              "comment": c.comment, "details": c.details}
             for ch in passes for c in ch.changes]
    if audit:
        s.execute(insert(_audit), audit)

    seen: dict[date, list[int]] = defaultdict(list)
    for ch in passes:
        for a in ch.seen_again:
            seen[a.as_of].append(ids[a.fingerprint])
    for day, alert_ids in seen.items():
        for part in chunks(alert_ids):
            s.execute(update(_alerts).where(_alerts.c.id.in_(part)).values(as_of=day))

    outbox = [_group_row(ch, ids, now, cause, as_of) for ch in passes if ch.notifications]
    if outbox:
        s.execute(upsert(s, _outbox).values(outbox).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return finals


def _group_row(ch: Changes, ids: dict[str, int], now: datetime, cause: str,
               as_of: date | None) -> dict[str, Any]:
    items = [(n.change, alert_as_dict({**_values(n.alert, ids), "id": ids[n.alert.fingerprint]}))
             for n in ch.notifications]
    key = notifications.dedupe_key(ch.patient_id, [(ids[n.alert.fingerprint], n.change, n.alert.revision)
                                                   for n in ch.notifications])
    return {"alert_id": None, "patient_id": ch.patient_id, "kind": notifications.KIND,
            "payload": notifications.group_document(ch.patient_id, cause, as_of, now, items),
            "dedupe_key": key, "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}


# ------------------------------------------------------------------------------ reconciliation


def reconcile_alerts(s: Session, patient_id: str, findings: list[Finding], as_of: date,
                     now: datetime) -> ReconcileResult:
    """Bring the patient's alerts in line with the findings of one assessment (monitor.alerts.reconcile)."""
    return reconcile_many(s, {patient_id: findings}, as_of, now)[patient_id]


def reconcile_many(s: Session, findings_by_patient: dict[str, list[Finding]], as_of: date,
                   now: datetime) -> dict[str, ReconcileResult]:
    """reconcile_alerts for a chunk of patients: one lock, one read and one batch of writes for all."""
    pids = sorted(findings_by_patient)
    loaded = _lock_and_load(s, pids)
    passes = [lifecycle.reconcile(pid, loaded[pid], findings_by_patient[pid], as_of, now) for pid in pids]
    _persist(s, passes, loaded, now, "reassessment", as_of)
    return {ch.patient_id: ch.counts() for ch in passes}


def expire_snoozes(s: Session, now: datetime, limit: int = 1000) -> int:
    """Expire the snoozes whose end time has passed (the scheduler's sweep; monitor.alerts.expire_snoozes),
    for up to `limit` patients; returns how many alerts were unsnoozed."""
    c = _alerts.c
    pids = list(s.execute(select(c.patient_id).where(c.status == "snoozed", c.snoozed_until <= now)
                          .group_by(c.patient_id).order_by(c.patient_id).limit(limit)).scalars())
    if not pids:
        return 0
    loaded = _lock_and_load(s, pids)
    passes = [lifecycle.expire_snoozes(pid, loaded[pid], now) for pid in pids]
    _persist(s, passes, loaded, now, "snooze_expired", None)
    return sum(ch.counts().unsnoozed for ch in passes)


# ----------------------------------------------------------------------------- clinicians' actions


def _clock(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _act(s: Session, alert_id: int, now: datetime | None,
         decide: Callable[[list[Alert], str, datetime], Changes]) -> dict[str, Any]:
    """Lock the alert's patient, load the patient's alerts, apply the action, persist, and return the
    alert acted on as the API shows it."""
    pid = s.execute(select(_alerts.c.patient_id).where(_alerts.c.id == alert_id)).scalar_one_or_none()
    if pid is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    when = _clock(now)
    loaded = _lock_and_load(s, [pid])
    target = next(a for a in loaded[pid] if a.id == alert_id)
    ch = decide(loaded[pid], target.fingerprint, when)
    finals = _persist(s, [ch], loaded, when, "action", None)
    ids = {a.fingerprint: a.id for a in loaded[pid] if a.id is not None}
    return alert_as_dict(_values(finals[pid].get(target.fingerprint, target), ids))


def acknowledge(s: Session, alert_id: int, actor: str, comment: str | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    return _act(s, alert_id, now,
                lambda alerts, fp, when: lifecycle.acknowledge(alerts, fp, actor, comment, when))


def snooze(s: Session, alert_id: int, until: datetime, actor: str, comment: str | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    return _act(s, alert_id, now,
                lambda alerts, fp, when: lifecycle.snooze(alerts, fp, until, actor, comment, when))


def resolve(s: Session, alert_id: int, actor: str, comment: str,
            now: datetime | None = None) -> dict[str, Any]:
    lifecycle.check_resolution_comment(comment)  # the reason is asked for before the alert is looked up
    return _act(s, alert_id, now,
                lambda alerts, fp, when: lifecycle.resolve(alerts, fp, actor, comment, when))


def assign(s: Session, alert_id: int, assignee: str, actor: str,
           now: datetime | None = None) -> dict[str, Any]:
    return _act(s, alert_id, now,
                lambda alerts, fp, when: lifecycle.assign(alerts, fp, assignee, actor, when))


def comment(s: Session, alert_id: int, actor: str, text: str, now: datetime | None = None) -> dict[str, Any]:
    lifecycle.check_comment(text)
    return _act(s, alert_id, now, lambda alerts, fp, when: lifecycle.comment(alerts, fp, actor, text, when))
