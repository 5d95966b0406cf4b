"""Outbox -> signed webhook, against a real HTTP receiver on loopback that is down, then up."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from tasks import jobs, notify, service
from tasks.ingest import accept
from tests.integration.pipeline.test_pipeline import cohort

pytestmark = pytest.mark.integration
SECRET = b"test-secret-not-a-real-one"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.up = False
        self.received: list[dict] = []
        self.bad_signatures = 0


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.server.up:
            self.send_response(503)
            self.end_headers()
            return
        ok = notify.verify(SECRET, self.headers["X-IMN-Timestamp"], body, self.headers["X-IMN-Signature"])
        if not ok:
            self.server.bad_signatures += 1
        self.server.received.append({"delivery": self.headers["X-IMN-Delivery"], **json.loads(body)})
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_receiver_down_then_up_gets_every_notification_exactly_once(pg_runtime) -> None:  # type: ignore[no-untyped-def]
    rt = pg_runtime
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rt.settings.webhook_allow_private = True  # the receiver is on loopback
        rt.settings.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        rt.settings.webhook_secret = SecretStr(SECRET.decode())
        rt.settings.webhook_backoff_s = 0.05
        data = ("\n".join(json.dumps(e) for e in cohort()) + "\n").encode()
        service.process(rt, [a.inbox_id for a in accept(rt, data, "ndjson", "feed.ndjson")], date(2025, 9, 1))  # receiver down
        with rt.engine.connect() as c:
            pending = c.exec_driver_sql("select count(*) from outbox where state = 'pending' and attempts >= 1").scalar()
        assert pending >= 2 and server.received == []
        server.up = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            service.send_due_notifications(rt)  # what the sweeper does when deliveries are due
            with rt.engine.connect() as c:
                left = c.exec_driver_sql("select count(*) from outbox where state <> 'delivered'").scalar()
            if left == 0:
                break
            time.sleep(0.1)
        with rt.engine.connect() as c:
            total = c.exec_driver_sql("select count(*) from outbox").scalar()
        ids = Counter(r["delivery"] for r in server.received)
        assert len(ids) == total and set(ids.values()) == {1}
        assert server.bad_signatures == 0
        # one delivery per patient: the patient's alert group
        assert sorted(r["patient_id"] for r in server.received) == ["P-ALB", "P-CSA"]
        assert all(r["kind"] == "alert_group" and r["version"] == 1 for r in server.received)
        assert {c["alert"]["rule"] for r in server.received for c in r["changes"]} >= {"csa_trough_low",
                                                                                     "albumin_low_thrombosis"}
    finally:
        server.shutdown()


def test_the_sweep_expires_a_snooze_by_the_clock_and_notifies_once(pg_runtime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from storage import repository as repo
    from storage.db import session
    from tasks.app import app

    rt = pg_runtime
    # the embedded mode, as the CLI configures it: the sweep's delivery tasks run in this process
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    monkeypatch.setitem(app.conf, "task_eager_propagates", True)
    server = Receiver()
    server.up = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rt.settings.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        rt.settings.webhook_allow_private = True  # the receiver is on loopback
        rt.settings.webhook_secret = SecretStr(SECRET.decode())
        data = ("\n".join(json.dumps(e) for e in cohort()) + "\n").encode()
        service.process(rt, [a.inbox_id for a in accept(rt, data, "ndjson", "feed.ndjson")], date(2025, 9, 1))
        assert len(server.received) == 2
        with rt.engine.connect() as c:
            alert_id = c.exec_driver_sql("select id from alerts where rule = 'csa_trough_low'").scalar()
        now = datetime.now(UTC)
        with session(rt.engine) as s:  # snoozed an hour ago until a second ago: due now
            repo.snooze(s, alert_id, now - timedelta(seconds=1), "dr.who", now=now - timedelta(hours=1))
        assert jobs.sweep_once(rt)["unsnoozed"] == 1  # no reassessment of the patient needed
        with rt.engine.connect() as c:
            status = c.exec_driver_sql(f"select status from alerts where id = {alert_id}").scalar()
            actions = [r[0] for r in c.exec_driver_sql(
                f"select action from alert_audit where alert_id = {alert_id} order by id")]
        assert status == "firing" and actions == ["fired", "snoozed", "unsnoozed"]
        last = server.received[-1]
        assert len(server.received) == 3 and server.bad_signatures == 0
        assert (last["patient_id"], last["cause"], [(c["change"], c["alert"]["id"]) for c in last["changes"]]) == (
            "P-CSA", "snooze_expired", [("unsnoozed", alert_id)])
        assert jobs.sweep_once(rt)["unsnoozed"] == 0 and len(server.received) == 3  # once
    finally:
        server.shutdown()
