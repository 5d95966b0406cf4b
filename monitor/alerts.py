"""The alert lifecycle: what happens to a patient's alerts when an assessment's findings, the clock or
a clinician act on them. Pure (no I/O, no clock: every function takes `now`); storage/alerts.py loads
the patient's alerts, calls one function here and persists the Changes it returns in one transaction.

States: firing, acknowledged, snoozed (the open ones) and resolved; docs/architecture.md ("Alert
lifecycle") draws the diagram. Transitions, each one Change (one audit row, one revision):
- fired: a finding with a new fingerprint (patient/rule/episode);
- updated: found again, same severity, new message, evidence or reference;
- escalated: found again, more severe; back to firing even if acknowledged or snoozed (someone must
  look again); deescalated: less severe (stays as it is otherwise);
- resolved (auto): an open alert the assessment did not find; reopened: a resolved alert found again,
  unless a clinician resolved it by hand and it is not worse than it was then;
- unsnoozed: the snooze's end time has passed (a snooze is a silence with an end time: it expires by
  the clock, in the scheduler's sweep or at the patient's next reassessment, whichever comes first);
- inhibited / uninhibited: an open alert of another rule makes this one redundant, or no longer
  (monitor/inhibitions.py holds the table);
- a clinician's acknowledged, snoozed, resolved (manual, with a comment), assigned, commented.
An alert found again with nothing new only moves its as_of (no revision, no audit row).

Notifications (one per alert at most, grouped per patient by storage into one delivery): fired,
reopened, escalated, unsnoozed, uninhibited (when the alert ends firing and not inhibited) and resolved
(when it was not inhibited). Only the system's changes notify: a clinician's action is their own act,
but what it causes to other alerts (resolving an inhibitor releases its targets) does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from monitor import inhibitions
from monitor.findings import Finding
from monitor.severity import SEVERITY_RANK

SYSTEM = "system"
OPEN_STATUSES = ("firing", "acknowledged", "snoozed")
ALERT_STATUSES = (*OPEN_STATUSES, "resolved")
# notifying changes, the most telling first: an alert that changed several ways in one pass is
# notified once, by the first of these it went through
NOTIFY_ORDER = ("fired", "reopened", "escalated", "uninhibited", "unsnoozed")
_COUNTED = frozenset({"fired", "updated", "escalated", "resolved", "reopened", "unsnoozed", "inhibited",
                      "uninhibited"})


class AlertActionError(ValueError):
    """A clinician's action that the alert's state does not allow (the message says why)."""


class AlertNotFound(AlertActionError):
    pass


def rank(severity: str | None) -> int:
    return SEVERITY_RANK.get(severity or "info", 0)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as the lifecycle sees it. `inhibited_by` is the fingerprint of the open alert that
    mutes it; `id` is storage's (None until a new alert is stored)."""

    fingerprint: str
    patient_id: str
    rule: str
    episode: str
    severity: str
    status: str
    message: str
    evidence: tuple[Mapping[str, Any], ...]
    reference: str
    as_of: date
    raised_at: datetime
    updated_at: datetime
    revision: int = 1
    resolved_at: datetime | None = None
    resolution: str | None = None  # auto | manual
    resolved_reason: str | None = None
    severity_at_resolution: str | None = None
    snoozed_until: datetime | None = None
    assigned_to: str | None = None
    acknowledged_by: str | None = None
    inhibited_by: str | None = None
    id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @property
    def name(self) -> str:
        """How messages name it: its id once stored."""
        return f"alert {self.id}" if self.id is not None else f"alert {self.fingerprint}"


@dataclass(frozen=True, slots=True)
class Change:
    """One transition: `alert` is the alert after it. One audit row each."""

    action: str
    alert: Alert
    from_status: str | None
    actor: str = SYSTEM
    comment: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    change: str  # fired, reopened, escalated, uninhibited, unsnoozed, resolved
    alert: Alert  # the alert as it ends this pass


@dataclass
class ReconcileResult:
    """How many alerts went through each kind of change (an alert may count under several)."""

    fired: int = 0
    updated: int = 0  # message/evidence changed, or severity fell (deescalated counts here too)
    escalated: int = 0
    resolved: int = 0
    reopened: int = 0
    deescalated: int = 0
    unsnoozed: int = 0
    inhibited: int = 0
    uninhibited: int = 0

    @property
    def changed(self) -> int:
        return (self.fired + self.updated + self.escalated + self.resolved + self.reopened + self.unsnoozed
                + self.inhibited + self.uninhibited)


@dataclass
class Changes:
    """What to write for one patient: the transitions in order, the alerts only seen again (their as_of
    moves quietly), and the notifications of this pass (one delivery per patient)."""

    patient_id: str
    changes: list[Change] = field(default_factory=list)
    seen_again: list[Alert] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def final(self) -> dict[str, Alert]:
        """Every changed alert as it ends this pass, by fingerprint, in order of first change."""
        out: dict[str, Alert] = {}
        for c in self.changes:
            out[c.alert.fingerprint] = c.alert  # a later change replaces the value, not the position
        return out

    def counts(self) -> ReconcileResult:
        """The system's changes only (a clinician's actions are not reconciliation)."""
        r = ReconcileResult()
        for c in self.changes:
            if c.actor != SYSTEM:
                continue
            if c.action == "deescalated":
                r.deescalated += 1
                r.updated += 1
            elif c.action in _COUNTED:
                setattr(r, c.action, getattr(r, c.action) + 1)
        return r

    def __bool__(self) -> bool:
        return bool(self.changes or self.seen_again or self.notifications)


# ------------------------------------------------------------------------------- the working set


class _Pass:
    """One pass over a patient's alerts: the current state of each, and the changes so far."""

    def __init__(self, patient_id: str, alerts: Iterable[Alert], now: datetime) -> None:
        self.now = now
        self.before: dict[str, Alert] = {}
        for a in alerts:
            if a.patient_id != patient_id:
                raise ValueError(f"alert {a.fingerprint} is not about patient {patient_id}")
            self.before[a.fingerprint] = a
        self.state: dict[str, Alert] = dict(self.before)
        self.out = Changes(patient_id)
        self._seen: dict[str, Alert] = {}
        self._last: dict[str, int] = {}  # fingerprint -> index of its latest change in out.changes

    def get(self, fingerprint: str) -> Alert:
        try:
            return self.state[fingerprint]
        except KeyError:
            raise AlertNotFound(f"alert {fingerprint} does not exist") from None

    def record(self, action: str, alert: Alert, from_status: str | None, *, actor: str = SYSTEM,
               comment: str | None = None, details: dict[str, Any] | None = None) -> Alert:
        self.state[alert.fingerprint] = alert
        self._last[alert.fingerprint] = len(self.out.changes)
        self.out.changes.append(Change(action, alert, from_status, actor, comment, details))
        return alert

    def change(self, alert: Alert, action: str, *, actor: str = SYSTEM, comment: str | None = None,
               details: dict[str, Any] | None = None, **values: Any) -> Alert:
        """A transition that changes the alert: one more revision, updated now."""
        new = replace(alert, revision=alert.revision + 1, updated_at=self.now, **values)
        return self.record(action, new, alert.status, actor=actor, comment=comment, details=details)

    def seen(self, alert: Alert, as_of: date) -> None:
        """Found again with nothing new: only as_of moves (no revision, audit row or notification)."""
        if alert.as_of != as_of:
            moved = replace(alert, as_of=as_of)
            self.state[alert.fingerprint] = moved
            self._seen[alert.fingerprint] = moved

    # ---------------------------------------------------------------------------------- the clock

    def expire_snoozes(self) -> None:
        for a in list(self.state.values()):
            if a.status == "snoozed" and a.snoozed_until is not None and a.snoozed_until <= self.now:
                self.change(a, "unsnoozed", status="firing", snoozed_until=None,
                            details={"reason": "snooze expired", "until": a.snoozed_until.isoformat()})

    # ---------------------------------------------------------------------------- inhibition

    def inhibitor_of(self, target: Alert) -> str | None:
        """The open alert that mutes `target`: its current inhibitor while that still qualifies (no
        churn), else the most severe qualifying one (then the smallest fingerprint)."""
        if not target.is_open or not inhibitions.may_be_inhibited(target.rule):
            return None
        best: Alert | None = None
        for source in self.state.values():
            if source.fingerprint == target.fingerprint or not source.is_open:
                continue
            if not inhibitions.can_inhibit(source.rule, source.severity, target.rule, target.severity):
                continue
            if source.fingerprint == target.inhibited_by:
                return source.fingerprint
            # the most severe wins; among equals the smallest fingerprint (comparing the other way round)
            if best is None or (rank(source.severity), best.fingerprint) > (rank(best.severity),
                                                                            source.fingerprint):
                best = source
        return best.fingerprint if best is not None else None

    def apply_inhibitions(self) -> None:
        """Mark or release every alert whose inhibitor changed. A fired or reopened alert is born
        inhibited (one change, not two); resolution already cleared it."""
        for fp in list(self.state):
            alert = self.state[fp]
            if not alert.is_open:
                continue
            inhibitor = self.inhibitor_of(alert)
            if inhibitor == alert.inhibited_by:
                continue
            details = self._inhibition_details(alert, inhibitor)
            last = self._last.get(fp)
            born = last is not None and self.out.changes[last].action in ("fired", "reopened")
            if inhibitor is not None and born and last is not None:
                c = self.out.changes[last]
                folded = replace(c.alert, inhibited_by=inhibitor)
                self.out.changes[last] = replace(c, alert=folded, details={**(c.details or {}), **details})
                self.state[fp] = folded
            elif inhibitor is not None:
                self.change(alert, "inhibited", inhibited_by=inhibitor, details=details)
            else:
                self.change(alert, "uninhibited", inhibited_by=None,
                            details={"was_inhibited_by": alert.inhibited_by,
                                     "reason": "inhibiting alert no longer open"})

    def _inhibition_details(self, target: Alert, inhibitor: str | None) -> dict[str, Any]:
        if inhibitor is None:
            return {}
        source = self.state[inhibitor]
        found = inhibitions.between(source.rule, target.rule)
        return {"inhibited_by": inhibitor, "inhibition": found.id if found else None}

    # ------------------------------------------------------------------------------ notifications

    def finish(self) -> Changes:
        """Decide the notifications (module docstring) and hand the changes over."""
        by_fp: dict[str, list[Change]] = {}
        for c in self.out.changes:
            by_fp.setdefault(c.alert.fingerprint, []).append(c)
        for fp, changes in by_fp.items():
            final = self.state[fp]
            system = {c.action for c in changes if c.actor == SYSTEM}
            before = self.before.get(fp)
            if not final.is_open:
                if "resolved" in system and not (before is not None and before.inhibited_by):
                    self.out.notifications.append(Notification("resolved", final))
            elif final.status == "firing" and final.inhibited_by is None:
                kind = next((k for k in NOTIFY_ORDER if k in system), None)
                if kind is not None:
                    self.out.notifications.append(Notification(kind, final))
        self.out.seen_again = [a for fp, a in self._seen.items() if fp not in by_fp]
        return self.out


# ---------------------------------------------------------------------------- reconciliation


def _finding_values(f: Finding, as_of: date) -> dict[str, Any]:
    return {"severity": f.severity, "message": f.message, "reference": f.reference,
            "evidence": tuple(e.as_dict() for e in f.evidence), "as_of": as_of}


def _strongest(patient_id: str, findings: Iterable[Finding]) -> dict[str, Finding]:
    """One finding per fingerprint: the most severe (the first of equals)."""
    wanted: dict[str, Finding] = {}
    for f in findings:
        if f.patient_id != patient_id:
            raise ValueError(f"finding {f.fingerprint} is not about patient {patient_id}")
        held = wanted.get(f.fingerprint)
        if held is None or rank(f.severity) > rank(held.severity):
            wanted[f.fingerprint] = f
    return wanted


def reconcile(patient_id: str, alerts: Iterable[Alert], findings: Iterable[Finding], as_of: date,
              now: datetime) -> Changes:
    """Bring a patient's alerts (all of them, open and resolved) in line with one assessment's findings.

    The assessment is taken as it is given: an open alert whose fingerprint it did not find is
    resolved, whatever as_of the alert was last seen with. Same inputs again: no changes."""
    p = _Pass(patient_id, alerts, now)
    p.expire_snoozes()
    wanted = _strongest(patient_id, findings)
    for fp, f in wanted.items():
        alert = p.state.get(fp)
        if alert is None:
            _fire(p, f, as_of)
        elif alert.is_open:
            _refresh(p, alert, f, as_of)
        else:
            _maybe_reopen(p, alert, f, as_of)
    for alert in list(p.state.values()):
        if alert.is_open and alert.fingerprint not in wanted:
            details: dict[str, Any] = {"resolution": "auto", "as_of": as_of.isoformat()}
            if alert.inhibited_by:
                details["was_inhibited_by"] = alert.inhibited_by
            p.change(alert, "resolved", status="resolved", resolved_at=now, resolution="auto",
                     resolved_reason=f"condition no longer met as of {as_of.isoformat()}",
                     severity_at_resolution=alert.severity, snoozed_until=None, inhibited_by=None,
                     as_of=as_of, details=details)
    p.apply_inhibitions()
    return p.finish()


def _fire(p: _Pass, f: Finding, as_of: date) -> None:
    alert = Alert(fingerprint=f.fingerprint, patient_id=f.patient_id, rule=f.rule, episode=f.episode,
                  status="firing", raised_at=p.now, updated_at=p.now, revision=1, **_finding_values(f, as_of))
    # the clinical date it fired for (raised_at is wall-clock time): the outcome report dates alerts by it
    p.record("fired", alert, None, details={"as_of": as_of.isoformat()})


def _refresh(p: _Pass, alert: Alert, f: Finding, as_of: date) -> None:
    new = _finding_values(f, as_of)
    if rank(f.severity) > rank(alert.severity):
        # a rise in severity breaks an acknowledgement or a snooze: someone must look again
        p.change(alert, "escalated", status="firing", snoozed_until=None,
                 details={"from_severity": alert.severity}, **new)
    elif rank(f.severity) < rank(alert.severity):
        p.change(alert, "deescalated", details={"from_severity": alert.severity}, **new)
    elif (alert.message, alert.evidence, alert.reference) != (new["message"], new["evidence"],
                                                              new["reference"]):
        p.change(alert, "updated", **new)
    else:
        p.seen(alert, as_of)


def _maybe_reopen(p: _Pass, alert: Alert, f: Finding, as_of: date) -> None:
    if alert.resolution == "manual" and rank(f.severity) <= rank(alert.severity_at_resolution):
        # a clinician closed it knowingly; it stays closed until it gets worse than it was then
        p.seen(alert, as_of)
        return
    details = {"resolution_was": alert.resolution,
               "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
               "severity_at_resolution": alert.severity_at_resolution}
    p.change(alert, "reopened", status="firing", resolved_at=None, resolution=None, resolved_reason=None,
             severity_at_resolution=None, snoozed_until=None, acknowledged_by=None, details=details,
             **_finding_values(f, as_of))


def expire_snoozes(patient_id: str, alerts: Iterable[Alert], now: datetime) -> Changes:
    """The clock alone: snoozes whose end time has passed expire (the scheduler's sweep)."""
    p = _Pass(patient_id, alerts, now)
    p.expire_snoozes()
    return p.finish()


def snooze_due(alert: Alert, now: datetime) -> bool:
    return alert.status == "snoozed" and alert.snoozed_until is not None and alert.snoozed_until <= now


# ------------------------------------------------------------------------- clinicians' actions
# Each takes all of the patient's alerts (resolving one may release the alerts it inhibited) and the
# fingerprint of the alert acted on; it raises AlertActionError when the alert's state forbids it.


def _actor(actor: str) -> str:
    if not actor or not actor.strip():
        raise AlertActionError("an action needs the name of who takes it")
    return actor.strip()


def _one(alerts: Sequence[Alert], target: str, now: datetime) -> tuple[_Pass, Alert]:
    if not alerts:
        raise AlertNotFound(f"alert {target} does not exist")
    p = _Pass(alerts[0].patient_id, alerts, now)
    return p, p.get(target)


def acknowledge(alerts: Sequence[Alert], target: str, actor: str, comment: str | None,
                now: datetime) -> Changes:
    p, alert = _one(alerts, target, now)
    if alert.status == "resolved":
        raise AlertActionError(f"{alert.name} is resolved; it cannot be acknowledged")
    if alert.status == "acknowledged":
        raise AlertActionError(f"{alert.name} is already acknowledged (by {alert.acknowledged_by})")
    who = _actor(actor)
    p.change(alert, "acknowledged", actor=who, comment=comment, status="acknowledged", acknowledged_by=who,
             snoozed_until=None)
    return p.finish()


def snooze(alerts: Sequence[Alert], target: str, until: datetime, actor: str, comment: str | None,
           now: datetime) -> Changes:
    p, alert = _one(alerts, target, now)
    if alert.status == "resolved":
        raise AlertActionError(f"{alert.name} is resolved; it cannot be snoozed")
    who = _actor(actor)
    if until.tzinfo is None:
        raise AlertActionError("snooze until needs a time zone")
    if until <= now:
        raise AlertActionError(f"snooze until {until.isoformat()} is not in the future")
    p.change(alert, "snoozed", actor=who, comment=comment, details={"until": until.isoformat()},
             status="snoozed", snoozed_until=until)
    return p.finish()


def check_resolution_comment(comment: str | None) -> str:
    if not comment or not comment.strip():
        raise AlertActionError("resolving an alert by hand needs a comment saying why")
    return comment.strip()


def resolve(alerts: Sequence[Alert], target: str, actor: str, comment: str, now: datetime) -> Changes:
    """Resolved by hand: stays closed unless the condition gets worse (reconcile). The alerts it
    inhibited are released (and notify if firing)."""
    why = check_resolution_comment(comment)
    p, alert = _one(alerts, target, now)
    if alert.status == "resolved":
        raise AlertActionError(f"{alert.name} is already resolved")
    who = _actor(actor)
    p.change(alert, "resolved", actor=who, comment=why, details={"resolution": "manual"}, status="resolved",
             resolved_at=now, resolution="manual", resolved_reason=why, severity_at_resolution=alert.severity,
             snoozed_until=None, inhibited_by=None)
    p.apply_inhibitions()
    return p.finish()


def assign(alerts: Sequence[Alert], target: str, assignee: str, actor: str, now: datetime) -> Changes:
    p, alert = _one(alerts, target, now)
    if alert.status == "resolved":
        raise AlertActionError(f"{alert.name} is resolved; it cannot be assigned")
    who = _actor(actor)
    assignee = (assignee or "").strip()
    if not assignee:
        raise AlertActionError("assign needs an assignee")
    if alert.assigned_to != assignee:  # the same assignee again changes nothing: no audit row
        p.change(alert, "assigned", actor=who, details={"from": alert.assigned_to, "to": assignee},
                 assigned_to=assignee)
    return p.finish()


def check_comment(text: str | None) -> str:
    if not text or not text.strip():
        raise AlertActionError("a comment cannot be empty")
    return text.strip()


def comment(alerts: Sequence[Alert], target: str, actor: str, text: str, now: datetime) -> Changes:
    """A comment changes nothing about the alert itself: an audit row only, no revision."""
    body = check_comment(text)
    p, alert = _one(alerts, target, now)
    p.record("commented", alert, alert.status, actor=_actor(actor), comment=body)
    return p.finish()
