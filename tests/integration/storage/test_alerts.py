from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from storage import repository as repo
from storage import views
from storage.db import session
from storage.models import AlertAuditRow, OutboxRow

from .builders import T0, finding, lab

pytestmark = pytest.mark.integration
D1, D2, D3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)


@pytest.fixture
def db(engine):  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid="P1"), lab(pid="P2")], T0)
    return engine


def _reconcile(engine, findings, as_of=D1, now=T0, pid="P1"):  # type: ignore[no-untyped-def]
    with session(engine) as s:
        return repo.reconcile_alerts(s, pid, findings, as_of, now)


def _outbox(engine) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(change, severity) of every notified change, in order, whatever group it travelled in."""
    with session(engine, write=False) as s:
        return [(c["change"], c["alert"]["severity"])
                for r in s.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars() for c in r.payload["changes"]]


def _alert(engine, fp="P1/titer_rising/e1"):  # type: ignore[no-untyped-def]
    with session(engine, write=False) as s:
        return next(a for a in views.list_alerts(s) if a["fingerprint"] == fp)


def _audit_actions(engine, alert_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with session(engine, write=False) as s:
        d = views.alert_detail(s, alert_id)
    assert d is not None
    return [a["action"] for a in d["audit"]]


def test_lifecycle_fire_update_escalate_resolve_reopen(db) -> None:  # type: ignore[no-untyped-def]
    r = _reconcile(db, [finding()])
    assert (r.fired, r.changed) == (1, 1)
    a = _alert(db)
    assert a["status"] == "firing" and a["raised_at"] == T0.isoformat() and a["evidence"][0]["analyte"] == "anti_pla2r"

    # same inputs again: nothing changes, nothing is notified
    assert _reconcile(db, [finding()]).changed == 0
    assert _reconcile(db, [finding()], as_of=D2, now=T0 + timedelta(days=1)).changed == 0
    assert _outbox(db) == [("fired", "warning")]
    assert _alert(db)["as_of"] == D2.isoformat()

    # new evidence, same severity: updated in place, no notification
    r = _reconcile(db, [finding(message="rose to 70", value=70.0)], as_of=D2)
    assert r.updated == 1 and _outbox(db) == [("fired", "warning")]
    assert _alert(db)["message"] == "rose to 70"

    # acknowledged, then escalated: back to firing and notified again
    with session(db) as s:
        repo.acknowledge(s, a["id"], "dr.who", "seen", now=T0)
    r = _reconcile(db, [finding(severity="critical")], as_of=D2)
    assert r.escalated == 1 and _alert(db)["status"] == "firing"
    assert _outbox(db) == [("fired", "warning"), ("escalated", "critical")]
    assert _reconcile(db, [finding(severity="critical")], as_of=D2).changed == 0

    # severity falls: audited, not notified
    r = _reconcile(db, [finding(severity="warning")], as_of=D2)
    assert r.deescalated == 1 and len(_outbox(db)) == 2

    # no longer found: resolved automatically, with when and why
    r = _reconcile(db, [], as_of=D3, now=T0 + timedelta(days=2))
    assert r.resolved == 1
    a = _alert(db)
    assert a["status"] == "resolved" and a["resolution"] == "auto"
    assert a["resolved_reason"] == "condition no longer met as of 2025-06-03"
    assert a["resolved_at"] == (T0 + timedelta(days=2)).isoformat()
    assert _reconcile(db, [], as_of=D3).changed == 0

    # found again: reopened and notified
    r = _reconcile(db, [finding()], as_of=D3)
    assert r.reopened == 1 and _alert(db)["status"] == "firing" and _alert(db)["resolved_at"] is None
    assert _reconcile(db, [finding()], as_of=D3).changed == 0
    assert [k for k, _ in _outbox(db)] == ["fired", "escalated", "resolved", "reopened"]
    assert _audit_actions(db, a["id"]) == ["fired", "updated", "acknowledged", "escalated", "deescalated",
                                           "resolved", "reopened"]
    with session(db, write=False) as s:
        # the outbox payload carries the alert as the API shows it
        payload = s.execute(select(OutboxRow.payload).order_by(OutboxRow.id.desc()).limit(1)).scalar_one()  # type: ignore[union-attr]
    assert payload["changes"] == [{"change": "reopened", "alert": _alert(db)}]


def test_manual_resolution_stays_unless_worse(db) -> None:  # type: ignore[no-untyped-def]
    _reconcile(db, [finding()])
    a = _alert(db)
    with session(db) as s:
        repo.resolve(s, a["id"], "dr.who", "discussed; expected after RTX", now=T0)
    assert _reconcile(db, [finding()], as_of=D2).changed == 0
    a = _alert(db)
    assert a["status"] == "resolved" and a["resolution"] == "manual"
    assert a["resolved_reason"] == "discussed; expected after RTX"
    r = _reconcile(db, [finding(severity="critical")], as_of=D2)
    assert r.reopened == 1 and _alert(db)["status"] == "firing" and _alert(db)["severity"] == "critical"
    assert [k for k, _ in _outbox(db)] == ["fired", "reopened"]


def test_snooze_expires_back_to_firing(db) -> None:  # type: ignore[no-untyped-def]
    _reconcile(db, [finding()])
    a = _alert(db)
    with session(db) as s:
        repo.snooze(s, a["id"], T0 + timedelta(days=7), "dr.who", "until the next visit", now=T0)
    assert _reconcile(db, [finding()], now=T0 + timedelta(days=1)).changed == 0
    assert _alert(db)["status"] == "snoozed"
    r = _reconcile(db, [finding()], now=T0 + timedelta(days=8))
    assert r.unsnoozed == 1 and _alert(db)["status"] == "firing" and _alert(db)["snoozed_until"] is None
    assert _audit_actions(db, a["id"]) == ["fired", "snoozed", "unsnoozed"]


def test_escalation_breaks_a_snooze(db) -> None:  # type: ignore[no-untyped-def]
    _reconcile(db, [finding()])
    with session(db) as s:
        repo.snooze(s, _alert(db)["id"], T0 + timedelta(days=7), "dr.who", now=T0)
    assert _reconcile(db, [finding(severity="critical")]).escalated == 1
    assert _alert(db)["status"] == "firing"


def test_alerts_of_other_patients_are_untouched(db) -> None:  # type: ignore[no-untyped-def]
    _reconcile(db, [finding(pid="P2")], pid="P2")
    _reconcile(db, [])  # P1 has nothing: P2's alert stays open
    assert _alert(db, "P2/titer_rising/e1")["status"] == "firing"
    with pytest.raises(ValueError, match="not about patient"):
        _reconcile(db, [finding(pid="P2")], pid="P1")


def test_many_findings_and_duplicates_in_one_assessment(db) -> None:  # type: ignore[no-untyped-def]
    fs = [finding(), finding(rule="relapse", episode="r1", severity="critical"), finding(severity="critical")]
    r = _reconcile(db, fs)
    assert r.fired == 2
    assert _alert(db)["severity"] == "critical"  # the duplicate fingerprint keeps the higher severity
    with session(db) as s:
        assert [a["severity"] for a in views.list_alerts(s)] == ["critical", "critical"]
        assert s.execute(select(func.count()).select_from(AlertAuditRow)).scalar_one() == 2


def test_actions_are_audited_and_guarded(db) -> None:  # type: ignore[no-untyped-def]
    _reconcile(db, [finding()])
    aid = _alert(db)["id"]
    with session(db) as s:
        out = repo.assign(s, aid, "dr.no", "nurse.a", now=T0)
        assert out["assigned_to"] == "dr.no"
        repo.assign(s, aid, "dr.no", "nurse.a", now=T0)  # unchanged: no audit row
        repo.comment(s, aid, "dr.no", "called the patient", now=T0)
        out = repo.acknowledge(s, aid, "dr.no", now=T0)
        assert out["status"] == "acknowledged" and out["acknowledged_by"] == "dr.no"
    with session(db) as s:
        with pytest.raises(repo.AlertActionError, match="already acknowledged"):
            repo.acknowledge(s, aid, "dr.no")
        with pytest.raises(repo.AlertActionError, match="needs a comment"):
            repo.resolve(s, aid, "dr.no", "  ")
        with pytest.raises(repo.AlertActionError, match="not in the future"):
            repo.snooze(s, aid, T0 - timedelta(days=1), "dr.no", now=T0)
        with pytest.raises(repo.AlertNotFound):
            repo.acknowledge(s, 987654, "dr.no")
        repo.resolve(s, aid, "dr.no", "treated", now=T0)
    with session(db) as s:
        for act in (lambda: repo.acknowledge(s, aid, "x"), lambda: repo.snooze(s, aid, T0 + timedelta(days=400), "x"),
                    lambda: repo.resolve(s, aid, "x", "again"), lambda: repo.assign(s, aid, "y", "x")):
            with pytest.raises(repo.AlertActionError, match="resolved"):
                act()
        detail = views.alert_detail(s, aid)
    assert detail is not None
    trail = detail["audit"]
    assert [(a["action"], a["actor"]) for a in trail] == [
        ("fired", "system"), ("assigned", "nurse.a"), ("commented", "dr.no"), ("acknowledged", "dr.no"),
        ("resolved", "dr.no")]
    assert trail[1]["details"] == {"from": None, "to": "dr.no"}
    assert trail[2]["comment"] == "called the patient"
    assert (trail[4]["from_status"], trail[4]["to_status"]) == ("acknowledged", "resolved")
    assert _outbox(db) == [("fired", "warning")]  # clinicians' actions notify nobody


def _groups(engine) -> list[dict]:  # type: ignore[no-untyped-def]
    with session(engine, write=False) as s:
        return [{"kind": r.kind, "patient_id": r.patient_id, "alert_id": r.alert_id, **r.payload}
                for r in s.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars()]


def test_one_notification_group_per_patient_and_pass(db) -> None:  # type: ignore[no-untyped-def]
    with session(db) as s:
        repo.reconcile_many(s, {"P1": [finding(rule="csa_trough_low", episode="c"), finding(rule="cni_trough_high",
                                                                                         episode="h")],
                                "P2": [finding(pid="P2")]}, D1, T0)
    groups = _groups(db)
    assert [(g["kind"], g["patient_id"], g["alert_id"], g["cause"], g["as_of"]) for g in groups] == [
        ("alert_group", "P1", None, "reassessment", "2025-06-01"), ("alert_group", "P2", None, "reassessment", "2025-06-01")]
    assert [(c["change"], c["alert"]["rule"]) for c in groups[0]["changes"]] == [("fired", "csa_trough_low"),
                                                                                ("fired", "cni_trough_high")]
    assert groups[0]["group"] == "patient:P1" and groups[0]["changes"][0]["alert"]["group"] == "patient:P1"


def test_inhibition_is_stored_shown_and_released(db) -> None:  # type: ignore[no-untyped-def]
    relapse = finding(rule="relapse", episode="r1", severity="critical")
    _reconcile(db, [finding(), relapse])
    rel, titer = _alert(db, "P1/relapse/r1"), _alert(db)
    assert titer["inhibited_by"] == {"id": rel["id"], "fingerprint": "P1/relapse/r1"}
    assert rel["inhibited_by"] is None and titer["status"] == "firing"
    assert _outbox(db) == [("fired", "critical")]  # the inhibited alert notified nobody
    with session(db, write=False) as s:
        assert views.alert_detail(s, titer["id"])["audit"][0]["details"] == {  # type: ignore[index]
            # the fired row names the clinical date it fired for (the outcome report) and its inhibitor
            "as_of": D1.isoformat(), "inhibited_by": "P1/relapse/r1", "inhibition": "relapse_over_titer"}

    # the clinician resolves the relapse: the titer alert is released and notified, in a group of its own
    with session(db) as s:
        out = repo.resolve(s, rel["id"], "dr.who", "sample mix-up", now=T0 + timedelta(hours=1))
    assert out["status"] == "resolved" and out["inhibited_by"] is None
    assert _alert(db)["inhibited_by"] is None
    last = _groups(db)[-1]
    assert (last["cause"], [(c["change"], c["alert"]["id"]) for c in last["changes"]]) == (
        "action", [("uninhibited", titer["id"])])
    assert _audit_actions(db, titer["id"]) == ["fired", "uninhibited"]


def test_an_inhibitor_fired_in_the_same_pass_gets_its_id_stored(db) -> None:  # type: ignore[no-untyped-def]
    # both alerts are new: the titer alert's inhibitor has no id when the titer alert is inserted
    _reconcile(db, [finding(), finding(rule="relapse", episode="r1")])
    assert _alert(db)["inhibited_by"]["id"] == _alert(db, "P1/relapse/r1")["id"]


def test_the_sweep_expires_due_snoozes_without_a_reassessment(db) -> None:  # type: ignore[no-untyped-def]
    _reconcile(db, [finding()])
    _reconcile(db, [finding(pid="P2")], pid="P2")
    p1, p2 = _alert(db)["id"], _alert(db, "P2/titer_rising/e1")["id"]
    with session(db) as s:
        repo.snooze(s, p1, T0 + timedelta(days=1), "dr.who", now=T0)
        repo.snooze(s, p2, T0 + timedelta(days=3), "dr.who", now=T0)
    with session(db) as s:
        assert repo.expire_snoozes(s, T0 + timedelta(hours=23)) == 0
    with session(db) as s:
        assert repo.expire_snoozes(s, T0 + timedelta(days=2)) == 1
    assert (_alert(db)["status"], _alert(db, "P2/titer_rising/e1")["status"]) == ("firing", "snoozed")
    assert _audit_actions(db, p1) == ["fired", "snoozed", "unsnoozed"]
    last = _groups(db)[-1]
    assert (last["patient_id"], last["cause"], last["as_of"], [c["change"] for c in last["changes"]]) == (
        "P1", "snooze_expired", None, ["unsnoozed"])
    with session(db) as s:
        assert repo.expire_snoozes(s, T0 + timedelta(days=2)) == 0  # done once
