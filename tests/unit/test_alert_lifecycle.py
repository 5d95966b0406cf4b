"""The alert lifecycle (monitor/alerts.py) without a database: a patient's alerts are kept in a dict
between passes the way storage keeps them in rows (new alerts get an id, seen-again ones a new as_of).
tests/integration/storage/test_alerts.py checks that storage persists the same."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import alerts as lc
from monitor import inhibitions
from monitor.alerts import Alert, AlertActionError, Changes
from monitor.findings import Evidence, Finding

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
D1, D2, D3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)
TITER = "P1/titer_rising/e1"
RELAPSE = "P1/relapse/r1"


def finding(rule: str = "titer_rising", episode: str = "e1", severity: str = "warning",
            message: str = "anti-PLA2R rose from 20 to 60 RU/mL", value: float = 60.0, pid: str = "P1") -> Finding:
    ev = (Evidence("lab", "anti_pla2r", value, "RU/mL", "2025-05-01T00:00:00+00:00", "lab:h:x"),)
    return Finding(pid, rule, episode, severity, message, ev, "KDIGO 2021")  # type: ignore[arg-type]


def relapse(severity: str = "warning") -> Finding:
    return finding("relapse", "r1", severity, "proteinuria 5 g/d after remission")


class Patient:
    """A patient's alerts between passes, stored the way storage stores them."""

    def __init__(self, pid: str = "P1") -> None:
        self.pid = pid
        self.alerts: dict[str, Alert] = {}
        self._ids = itertools.count(1)

    def apply(self, ch: Changes) -> Changes:
        for a in ch.seen_again:
            self.alerts[a.fingerprint] = a
        for fp, a in ch.final().items():
            self.alerts[fp] = a if a.id is not None else _with_id(a, next(self._ids))
        return ch

    def reconcile(self, findings: list[Finding], as_of: date = D1, now: datetime = T0) -> Changes:
        return self.apply(lc.reconcile(self.pid, list(self.alerts.values()), findings, as_of, now))

    def act(self, action: str, fp: str, *args: object, now: datetime = T0) -> Changes:
        return self.apply(getattr(lc, action)(list(self.alerts.values()), fp, *args, now))

    def __getitem__(self, fp: str) -> Alert:
        return self.alerts[fp]


def _with_id(a: Alert, i: int) -> Alert:
    from dataclasses import replace

    return replace(a, id=i)


def notified(ch: Changes) -> list[tuple[str, str]]:
    return [(n.change, n.alert.fingerprint) for n in ch.notifications]


def actions(ch: Changes, fp: str | None = None) -> list[str]:
    return [c.action for c in ch.changes if fp is None or c.alert.fingerprint == fp]


# ------------------------------------------------------------------------------ reconciliation


def test_fire_update_escalate_deescalate_resolve_reopen() -> None:
    p = Patient()
    ch = p.reconcile([finding()])
    assert actions(ch) == ["fired"] and notified(ch) == [("fired", TITER)]
    a = p[TITER]
    assert (a.status, a.raised_at, a.revision, a.evidence[0]["analyte"]) == ("firing", T0, 1, "anti_pla2r")

    # same inputs again: nothing; a new as_of only moves as_of (no revision, no audit, no notification)
    assert not p.reconcile([finding()])
    ch = p.reconcile([finding()], as_of=D2, now=T0 + timedelta(days=1))
    assert (ch.changes, ch.notifications, [x.as_of for x in ch.seen_again]) == ([], [], [D2])
    assert p[TITER].as_of == D2 and p[TITER].revision == 1

    ch = p.reconcile([finding(message="rose to 70", value=70.0)], as_of=D2)
    assert actions(ch) == ["updated"] and notified(ch) == [] and p[TITER].message == "rose to 70"
    assert p[TITER].revision == 2 and ch.counts().updated == 1

    p.act("acknowledge", TITER, "dr.who", "seen")
    ch = p.reconcile([finding(severity="critical")], as_of=D2)
    assert actions(ch) == ["escalated"] and notified(ch) == [("escalated", TITER)]
    assert p[TITER].status == "firing" and ch.changes[0].details == {"from_severity": "warning"}
    assert not p.reconcile([finding(severity="critical")], as_of=D2)

    ch = p.reconcile([finding(severity="warning")], as_of=D2)
    assert actions(ch) == ["deescalated"] and notified(ch) == []
    assert (ch.counts().deescalated, ch.counts().updated) == (1, 1)

    later = T0 + timedelta(days=2)
    ch = p.reconcile([], as_of=D3, now=later)
    assert actions(ch) == ["resolved"] and notified(ch) == [("resolved", TITER)]
    a = p[TITER]
    assert (a.status, a.resolution, a.resolved_at, a.severity_at_resolution) == ("resolved", "auto", later, "warning")
    assert a.resolved_reason == "condition no longer met as of 2025-06-03"
    assert not p.reconcile([], as_of=D3)

    ch = p.reconcile([finding()], as_of=D3)
    assert actions(ch) == ["reopened"] and notified(ch) == [("reopened", TITER)]
    assert p[TITER].status == "firing" and p[TITER].resolved_at is None and p[TITER].resolution is None
    assert ch.changes[0].details == {"resolution_was": "auto", "resolved_at": later.isoformat(),
                                     "severity_at_resolution": "warning"}


def test_every_change_bumps_the_revision_and_records_from_and_to() -> None:
    p = Patient()
    p.reconcile([finding()])
    ch = p.reconcile([finding(severity="critical")])
    c = ch.changes[0]
    assert (c.from_status, c.alert.status, c.alert.revision, c.actor) == ("firing", "firing", 2, lc.SYSTEM)
    assert c.alert.updated_at == T0


def test_manual_resolution_stays_closed_unless_worse() -> None:
    p = Patient()
    p.reconcile([finding()])
    ch = p.act("resolve", TITER, "dr.who", "discussed; expected after RTX")
    assert notified(ch) == [] and ch.changes[0].actor == "dr.who"
    a = p[TITER]
    assert (a.status, a.resolution, a.resolved_reason) == ("resolved", "manual", "discussed; expected after RTX")
    ch = p.reconcile([finding()], as_of=D2)
    assert ch.changes == [] and ch.notifications == [] and p[TITER].status == "resolved"
    ch = p.reconcile([finding(severity="critical")], as_of=D2)
    assert actions(ch) == ["reopened"] and notified(ch) == [("reopened", TITER)]
    assert (p[TITER].status, p[TITER].severity) == ("firing", "critical")


def test_snooze_expires_back_to_firing_and_notifies() -> None:
    p = Patient()
    p.reconcile([finding()])
    p.act("snooze", TITER, T0 + timedelta(days=7), "dr.who", "until the next visit")
    assert not p.reconcile([finding()], now=T0 + timedelta(days=1))
    assert p[TITER].status == "snoozed"
    ch = p.reconcile([finding()], now=T0 + timedelta(days=8))
    assert actions(ch) == ["unsnoozed"] and notified(ch) == [("unsnoozed", TITER)]
    assert (p[TITER].status, p[TITER].snoozed_until) == ("firing", None) and ch.counts().unsnoozed == 1


def test_snooze_ends_exactly_at_its_end_time() -> None:
    p = Patient()
    p.reconcile([finding()])
    until = T0 + timedelta(days=7)
    p.act("snooze", TITER, until, "dr.who", None)
    assert not lc.expire_snoozes("P1", list(p.alerts.values()), until - timedelta(microseconds=1))
    ch = p.apply(lc.expire_snoozes("P1", list(p.alerts.values()), until))
    assert actions(ch) == ["unsnoozed"] and notified(ch) == [("unsnoozed", TITER)]
    assert ch.changes[0].details == {"reason": "snooze expired", "until": until.isoformat()}


def test_an_expired_snooze_of_an_alert_that_also_resolves_notifies_the_resolution_only() -> None:
    p = Patient()
    p.reconcile([finding()])
    p.act("snooze", TITER, T0 + timedelta(days=1), "dr.who", None)
    ch = p.reconcile([], as_of=D3, now=T0 + timedelta(days=2))
    assert actions(ch) == ["unsnoozed", "resolved"] and notified(ch) == [("resolved", TITER)]


def test_escalation_breaks_a_snooze() -> None:
    p = Patient()
    p.reconcile([finding()])
    p.act("snooze", TITER, T0 + timedelta(days=7), "dr.who", None)
    ch = p.reconcile([finding(severity="critical")])
    assert actions(ch) == ["escalated"] and (p[TITER].status, p[TITER].snoozed_until) == ("firing", None)


def test_findings_of_another_patient_are_refused() -> None:
    with pytest.raises(ValueError, match="not about patient"):
        lc.reconcile("P1", [], [finding(pid="P2")], D1, T0)


def test_duplicate_fingerprints_keep_the_most_severe_and_fire_once() -> None:
    p = Patient()
    ch = p.reconcile([finding(), finding(severity="critical"), finding(severity="warning")])
    assert actions(ch) == ["fired"] and p[TITER].severity == "critical"


# --------------------------------------------------------------------------------- inhibition


def test_an_open_relapse_inhibits_the_titer_alert_fired_with_it() -> None:
    p = Patient()
    ch = p.reconcile([finding(), relapse()])
    # one change per alert: the titer alert is born inhibited
    assert [(c.action, c.alert.fingerprint) for c in ch.changes] == [("fired", TITER), ("fired", RELAPSE)]
    assert p[TITER].inhibited_by == RELAPSE and p[RELAPSE].inhibited_by is None
    # the fired record names the clinical date it was found on (the outcome report reads it)
    assert ch.changes[0].details == {"inhibited_by": RELAPSE, "inhibition": "relapse_over_titer",
                                     "as_of": D1.isoformat()}
    assert notified(ch) == [("fired", RELAPSE)]
    assert ch.counts().fired == 2


def test_an_alert_already_notified_becomes_inhibited_silently() -> None:
    p = Patient()
    p.reconcile([finding()])
    ch = p.reconcile([finding(), relapse()])
    assert [(c.action, c.alert.fingerprint) for c in ch.changes] == [("fired", RELAPSE), ("inhibited", TITER)]
    assert notified(ch) == [("fired", RELAPSE)] and p[TITER].revision == 2
    assert not p.reconcile([finding(), relapse()])  # stable


def test_an_inhibited_alert_changes_silently_and_is_released_once_when_its_inhibitor_resolves() -> None:
    p = Patient()
    p.reconcile([finding(), relapse()])
    ch = p.reconcile([finding(message="rose to 70", value=70.0), relapse()])
    assert actions(ch) == ["updated"] and notified(ch) == []
    ch = p.reconcile([finding(message="rose to 70", value=70.0)], as_of=D2)
    assert [(c.action, c.alert.fingerprint) for c in ch.changes] == [("resolved", RELAPSE), ("uninhibited", TITER)]
    assert notified(ch) == [("resolved", RELAPSE), ("uninhibited", TITER)]
    assert p[TITER].inhibited_by is None and ch.counts().uninhibited == 1
    assert not p.reconcile([finding(message="rose to 70", value=70.0)], as_of=D2)


def test_resolving_the_inhibitor_by_hand_releases_its_targets() -> None:
    p = Patient()
    p.reconcile([finding(), relapse()])
    ch = p.act("resolve", RELAPSE, "dr.who", "not a relapse: sample mix-up")
    assert [(c.action, c.actor) for c in ch.changes] == [("resolved", "dr.who"), ("uninhibited", lc.SYSTEM)]
    # the clinician's own act notifies nobody; the alert it released is firing again: notified once
    assert notified(ch) == [("uninhibited", TITER)]


def test_a_released_alert_that_was_acknowledged_or_snoozed_does_not_notify() -> None:
    p = Patient()
    p.reconcile([finding(), relapse()])
    p.act("acknowledge", TITER, "dr.who", None)
    ch = p.reconcile([finding()])
    assert "uninhibited" in actions(ch, TITER) and notified(ch) == [("resolved", RELAPSE)]


def test_an_inhibited_alert_resolving_sends_nothing() -> None:
    p = Patient()
    p.reconcile([finding(), relapse()])
    ch = p.reconcile([relapse()])
    assert actions(ch) == ["resolved"] and notified(ch) == []
    assert p[TITER].inhibited_by is None  # a closed alert is not inhibited
    assert ch.changes[0].details["was_inhibited_by"] == RELAPSE  # type: ignore[index]


def test_an_inhibited_alert_that_expires_its_snooze_stays_quiet() -> None:
    p = Patient()
    p.reconcile([finding(), relapse()])
    p.act("snooze", TITER, T0 + timedelta(days=1), "dr.who", None)
    ch = p.apply(lc.expire_snoozes("P1", list(p.alerts.values()), T0 + timedelta(days=2)))
    assert actions(ch) == ["unsnoozed"] and notified(ch) == []


def test_a_snoozed_or_acknowledged_inhibitor_still_inhibits() -> None:
    p = Patient()
    p.reconcile([relapse()])
    p.act("snooze", RELAPSE, T0 + timedelta(days=30), "dr.who", None)
    ch = p.reconcile([relapse(), finding()])
    assert p[TITER].inhibited_by == RELAPSE and notified(ch) == []


def test_a_target_more_severe_than_its_source_is_not_inhibited() -> None:
    p = Patient()
    p.reconcile([finding(severity="critical"), relapse("warning")])
    assert p[TITER].inhibited_by is None
    # the relapse becomes critical: now it may mute the titer alert
    ch = p.reconcile([finding(severity="critical"), relapse("critical")])
    assert p[TITER].inhibited_by == RELAPSE and ("inhibited", TITER) in [(c.action, c.alert.fingerprint)
                                                                        for c in ch.changes]


def test_an_inhibited_alert_escalating_past_its_inhibitor_is_released_and_notified_as_escalated() -> None:
    p = Patient()
    p.reconcile([finding(), relapse()])
    ch = p.reconcile([finding(severity="critical"), relapse()])
    assert actions(ch, TITER) == ["escalated", "uninhibited"]
    assert notified(ch) == [("escalated", TITER)]


def test_the_inhibitor_is_kept_while_it_qualifies_and_the_most_severe_is_chosen() -> None:
    immuno = "P1/immunological_relapse/i1"
    p = Patient()
    p.reconcile([finding(), finding("immunological_relapse", "i1")])
    assert p[TITER].inhibited_by == immuno
    # a relapse also qualifies now: the titer alert keeps its inhibitor (no churn)
    ch = p.reconcile([finding(), finding("immunological_relapse", "i1"), relapse("critical")])
    assert TITER not in [c.alert.fingerprint for c in ch.changes] and p[TITER].inhibited_by == immuno
    assert p["P1/immunological_relapse/i1"].inhibited_by == RELAPSE
    # its inhibitor resolves: the remaining one takes over, no release in between
    ch = p.reconcile([finding(), relapse("critical")])
    assert actions(ch, TITER) == ["inhibited"] and p[TITER].inhibited_by == RELAPSE
    assert notified(ch) == []  # the immunological relapse resolved while inhibited: nothing


def test_new_alerts_pick_the_most_severe_inhibitor() -> None:
    p = Patient()
    p.reconcile([finding(), finding("immunological_relapse", "i1"), relapse("critical")])
    assert p[TITER].inhibited_by == RELAPSE


# ------------------------------------------------------------------------- clinicians' actions


def test_actions_are_guarded_audited_and_notify_nobody() -> None:
    p = Patient()
    p.reconcile([finding()])
    ch = p.act("assign", TITER, "dr.no", "nurse.a")
    assert [(c.action, c.actor, c.details) for c in ch.changes] == [("assigned", "nurse.a", {"from": None, "to": "dr.no"})]
    assert not p.act("assign", TITER, "dr.no", "nurse.a")  # the same assignee: nothing
    ch = p.act("comment", TITER, "dr.no", "  called the patient ")
    assert [(c.action, c.comment, c.alert.revision) for c in ch.changes] == [("commented", "called the patient", 2)]
    ch = p.act("acknowledge", TITER, "dr.no", None)
    assert (p[TITER].status, p[TITER].acknowledged_by) == ("acknowledged", "dr.no") and ch.notifications == []
    with pytest.raises(AlertActionError, match="alert 1 is already acknowledged \\(by dr.no\\)"):
        p.act("acknowledge", TITER, "dr.no", None)
    with pytest.raises(AlertActionError, match="needs a comment"):
        p.act("resolve", TITER, "dr.no", "  ")
    with pytest.raises(AlertActionError, match="not in the future"):
        p.act("snooze", TITER, T0 - timedelta(days=1), "dr.no", None)
    with pytest.raises(AlertActionError, match="needs a time zone"):
        p.act("snooze", TITER, datetime(2030, 1, 1), "dr.no", None)
    with pytest.raises(AlertActionError, match="needs the name"):
        p.act("assign", TITER, "dr.x", " ")
    with pytest.raises(AlertActionError, match="needs an assignee"):
        p.act("assign", TITER, "", "dr.no")
    with pytest.raises(AlertActionError, match="cannot be empty"):
        p.act("comment", TITER, "dr.no", "")
    with pytest.raises(lc.AlertNotFound):
        p.act("acknowledge", "P1/nothing/x", "dr.no", None)
    ch = p.act("resolve", TITER, "dr.no", "treated")
    assert (ch.changes[0].from_status, ch.changes[0].alert.status) == ("acknowledged", "resolved")
    for action, args in (("acknowledge", ("x", None)), ("snooze", (T0 + timedelta(days=400), "x", None)),
                         ("resolve", ("x", "again")), ("assign", ("y", "x"))):
        with pytest.raises(AlertActionError, match="resolved"):
            p.act(action, TITER, *args)
    assert p.act("comment", TITER, "dr.no", "for the record").changes[0].action == "commented"


def test_acknowledging_ends_a_snooze() -> None:
    p = Patient()
    p.reconcile([finding()])
    p.act("snooze", TITER, T0 + timedelta(days=7), "dr.who", None)
    p.act("acknowledge", TITER, "dr.who", None)
    assert (p[TITER].status, p[TITER].snoozed_until) == ("acknowledged", None)
    assert not lc.expire_snoozes("P1", list(p.alerts.values()), T0 + timedelta(days=8))


# ------------------------------------------------------------------------------------ properties

_RULES = ("relapse", "immunological_relapse", "titer_rising", "csa_trough_low")
_findings = st.lists(st.tuples(st.sampled_from(_RULES), st.sampled_from(("a", "b")),
                               st.sampled_from(("info", "warning", "critical"))), max_size=6)


@settings(max_examples=100, deadline=None)
@given(st.lists(_findings, min_size=1, max_size=6))
def test_any_sequence_of_assessments_keeps_the_lifecycle_invariants(passes) -> None:  # type: ignore[no-untyped-def]
    p = Patient()
    for i, raw in enumerate(passes):
        fs = [finding(rule, ep, sev) for rule, ep, sev in raw]
        now = T0 + timedelta(days=i)
        ch = p.reconcile(fs, as_of=now.date(), now=now)
        # the open alerts are exactly what this assessment found
        assert {fp for fp, a in p.alerts.items() if a.is_open} == {f.fingerprint for f in fs}
        # inhibition: every open alert is muted by an open alert allowed to mute it, and an alert
        # that could be muted by some open alert is
        for a in p.alerts.values():
            if not a.is_open:
                assert a.inhibited_by is None
                continue
            sources = [s for s in p.alerts.values() if s.is_open and s.fingerprint != a.fingerprint
                       and inhibitions.can_inhibit(s.rule, s.severity, a.rule, a.severity)]
            assert (a.inhibited_by is None) == (not sources)
            assert a.inhibited_by is None or a.inhibited_by in {s.fingerprint for s in sources}
        # at most one notification per alert, none for one that ends inhibited
        fps = [n.alert.fingerprint for n in ch.notifications]
        assert len(fps) == len(set(fps))
        assert all(n.alert.inhibited_by is None for n in ch.notifications)
        # the same assessment again changes nothing
        assert not lc.reconcile("P1", list(p.alerts.values()), fs, now.date(), now)
