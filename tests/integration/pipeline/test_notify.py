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

from tasks import jobs, notify
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
        jobs.run_inline_ingest(rt, [a.inbox_id for a in accept(rt, data, "ndjson", "feed.ndjson")], date(2025, 9, 1))  # receiver down
        with rt.engine.connect() as c:
            pending = c.exec_driver_sql("select count(*) from outbox where state = 'pending' and attempts >= 1").scalar()
        assert pending >= 2 and server.received == []
        server.up = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs.deliver_inline(rt)  # what the sweeper does when deliveries are due
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
        assert {r["alert"]["rule"] for r in server.received} >= {"csa_trough_low", "albumin_low_thrombosis"}
    finally:
        server.shutdown()
