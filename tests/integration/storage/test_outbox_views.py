from __future__ import annotations

from datetime import date, timedelta

import pytest

from storage import repository as repo
from storage import views
from storage.db import session

from .builders import T0, finding, lab

pytestmark = pytest.mark.integration


@pytest.fixture
def fired(engine):  # type: ignore[no-untyped-def]
    with session(engine) as s:
        repo.store_events(s, None, [lab(pid="P1"), lab(pid="P2")], T0)
        repo.reconcile_alerts(s, "P1", [finding(), finding(rule="relapse", episode="r", severity="critical")],
                              date(2025, 6, 1), T0)
        repo.reconcile_alerts(s, "P2", [finding(pid="P2", severity="info")], date(2025, 6, 1),
                              T0 + timedelta(hours=1))
    return engine


def test_outbox_delivery_retries_and_dead_letter(fired) -> None:  # type: ignore[no-untyped-def]
    with session(fired) as s:  # a third notification group: P2's alert resolves
        repo.reconcile_alerts(s, "P2", [], date(2025, 6, 2), T0 + timedelta(hours=1, minutes=30))
    with session(fired) as s:
        due = repo.pending_notifications(s, T0 + timedelta(hours=2), 10)
        # one row per patient and pass; P1's titer_rising is inhibited by its relapse: not notified
        assert [(r.kind, r.patient_id) for r in due] == [("alert_group", "P1"), ("alert_group", "P2"),
                                                         ("alert_group", "P2")]
        assert [(c["change"], c["alert"]["rule"]) for c in due[0].payload["changes"]] == [("fired", "relapse")]
        assert [c["change"] for c in due[2].payload["changes"]] == ["resolved"]
        assert repo.pending_notifications(s, T0 - timedelta(seconds=1), 10) == []
        first, second = due[0].id, due[1].id
        repo.mark_delivered(s, first, T0)
        assert repo.mark_failed(s, second, T0, "HTTP 503", max_attempts=3, backoff_base_s=10) == "pending"
    with session(fired) as s:
        row = repo.lock_outbox(s, second)
        assert row is not None and row.attempts == 1 and row.next_attempt_at == T0 + timedelta(seconds=10)
        assert row.last_error == "HTTP 503"
        assert repo.pending_notifications(s, T0 + timedelta(seconds=5), 10) == []  # backing off
        assert repo.mark_failed(s, second, T0 + timedelta(seconds=10), "timeout", 3, 10) == "pending"
        row = repo.lock_outbox(s, second)
        assert row is not None and row.next_attempt_at == T0 + timedelta(seconds=30)  # 10 s * 2**1
        assert repo.mark_failed(s, second, T0 + timedelta(seconds=30), "timeout", 3, 10) == "dead"
    with session(fired) as s:
        assert [r.id for r in repo.pending_notifications(s, T0 + timedelta(days=1), 10)] == [due[2].id]
        delivered = repo.lock_outbox(s, first)
        assert delivered is not None and delivered.state == "delivered" and delivered.delivered_at == T0


def test_list_alerts_shape_filters_and_order(fired) -> None:  # type: ignore[no-untyped-def]
    with session(fired) as s:
        alerts = views.list_alerts(s)
        # critical first, then by severity, newest first within one severity
        assert [(a["patient_id"], a["severity"]) for a in alerts] == [
            ("P1", "critical"), ("P1", "warning"), ("P2", "info")]
        a = alerts[0]
        for key in ("id", "patient_id", "rule", "severity", "status", "raised_at", "updated_at", "message",
                    "evidence", "reference", "fingerprint", "episode", "resolved_at", "resolved_reason"):
            assert key in a
        assert a["raised_at"] == T0.isoformat() and isinstance(a["evidence"], list)
        assert a["evidence"][0] == {"analyte": "anti_pla2r", "value": 60.0, "unit": "RU/mL",
                                    "effective_at": "2025-05-01T00:00:00+00:00", "event_id": "lab:h:x"}
        assert [x["rule"] for x in views.list_alerts(s, patient_id="P1")] == ["relapse", "titer_rising"]
        assert len(views.list_alerts(s, status="firing", severity="info")) == 1
        assert len(views.list_alerts(s, rule="relapse")) == 1 and len(views.list_alerts(s, limit=1)) == 1
        assert views.list_alerts(s, status="resolved") == []
        assert views.counts_by_rule(s) == {"relapse": {"firing": 1}, "titer_rising": {"firing": 2}}
        assert views.alert_detail(s, 424242) is None
        d = views.alert_detail(s, a["id"])
        assert d is not None and d["audit"][0]["action"] == "fired" and d["audit"][0]["at"] == T0.isoformat()
        json_ready = __import__("json").dumps([alerts, d, views.patient_view(s, "P1"), views.inbox_view(s)])
        assert json_ready
