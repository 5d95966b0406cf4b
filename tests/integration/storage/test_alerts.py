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
    with session(engine, write=False) as s:
        return [(r.kind, r.payload["severity"]) for r in s.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars()]


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
        # the outbox payload is the alert as the API shows it
        payload = s.execute(select(OutboxRow.payload).order_by(OutboxRow.id.desc()).limit(1)).scalar_one()  # type: ignore[union-attr]
    assert payload == _alert(db)


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
