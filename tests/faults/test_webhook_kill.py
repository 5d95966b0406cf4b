"""Fault: the celery worker SIGKILLed while it is delivering notifications, on both delivery paths:
the single IMN_WEBHOOK_URL (one `outbox` row per alert change) and a webhook subscription (one
`webhook_deliveries` row per outbox row and subscription).

A real HTTP receiver on loopback holds the first request of each path open until the test has
killed the worker, then answers 200 (to a dead socket). A new worker and the sweeper then deliver
everything. The guarantee is at-least-once with a stable delivery id (X-IMN-Delivery): the database
records each notification delivered exactly once, and the receiver sees every id at least once;
the only repeats are the requests that were in flight at the kill, sent again with the same
delivery id and the same body, so the receiver can deduplicate on it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from storage import subscriptions as subs
from storage.db import session
from tasks import notify
from tests.faults._feeds import cohort, write
from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.integration
PATIENTS = 12
OUTBOX_SECRET = "faults-outbox-secret-0123456789"
SUB_SECRET = "faults-subscription-secret-0123"


class HoldingReceiver(ThreadingHTTPServer):
    """Records every request; while `hold` is on, keeps the first request of each path open until
    `release` is set, then answers 200 (whoever sent it may be dead by then)."""

    daemon_threads = True

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secrets = {path: s.encode() for path, s in secrets.items()}
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.held: dict[str, str] = {}  # path -> delivery id of the request held open there
        self.hold = True
        self.release = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass  # the answer to a killed worker's closed socket fails: expected here


class _Handler(BaseHTTPRequestHandler):
    server: HoldingReceiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = notify.verify(self.server.secrets[self.path], self.headers["X-IMN-Timestamp"], body,
                           self.headers["X-IMN-Signature"])
        delivery = self.headers["X-IMN-Delivery"]
        with self.server.lock:
            self.server.received.append({"path": self.path, "delivery": delivery, "body": body, "signed": ok})
            hold = self.server.hold and self.path not in self.server.held
            if hold:
                self.server.held[self.path] = delivery
        if hold:
            self.server.release.wait(60)
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_worker_killed_while_delivering_every_notification_delivered_once(fstack: FaultStack) -> None:
    rcv = HoldingReceiver({"/outbox": OUTBOX_SECRET, "/sub": SUB_SECRET})
    threading.Thread(target=rcv.serve_forever, daemon=True).start()
    try:
        _run(fstack, rcv)
    finally:
        rcv.release.set()
        rcv.shutdown()
        rcv.server_close()


def _run(fstack: FaultStack, rcv: HoldingReceiver) -> None:
    fstack.extra.update(IMN_WEBHOOK_URL=rcv.url("/outbox"), IMN_WEBHOOK_SECRET=OUTBOX_SECRET,
                        IMN_WEBHOOK_BACKOFF_S="0.5")
    fstack.extra.update(IMN_WEBHOOK_ALLOW_PRIVATE="1")  # the receiver is on loopback
    with session(fstack.engine()) as s:
        sub, _ = subs.create_subscription(s, "faults", rcv.url("/sub"), None, datetime.now(UTC), SUB_SECRET)
    # as_of is today (no --as-of), as in production, so a re-drive by the sweeper assesses the same day
    today = datetime.now(UTC).date()
    f = write(fstack.tmp / "cohort.ndjson", cohort(PATIENTS, history=2, prefix="WH",
                                                    recent=(today - timedelta(days=5)).isoformat()))
    fstack.start_worker(concurrency=2)
    r = fstack.cli("ingest", str(f), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == PATIENTS * 5

    # both worker children end up inside a POST the receiver holds: one per path
    deadline = time.monotonic() + 60
    while len(rcv.held) < 2:
        assert time.monotonic() < deadline, (rcv.held, fstack.worker_logs()[-3000:])
        time.sleep(0.02)
    fstack.kill_workers()  # SIGKILL, parent and children, mid-delivery
    held_outbox, held_sub = int(rcv.held["/outbox"]), int(rcv.held["/sub"])
    print(f"webhook kill: in flight outbox {held_outbox}, subscription delivery {held_sub}; "
          f"{len(rcv.received)} requests received before the kill")
    # the killed attempts recorded nothing: the outbox row's transaction (which held its lock during
    # the POST) died with the connection; the subscription delivery is still claimed by its lease
    row = fstack.rows("select state, attempts from outbox where id = :i", i=held_outbox)[0]
    assert (row.state, row.attempts) == ("pending", 0)
    row = fstack.rows("select state, attempts, next_attempt_at > now() + interval '60 seconds' as leased"
                      " from webhook_deliveries where id = :i", i=held_sub)[0]
    assert (row.state, row.attempts, row.leased) == ("pending", 0, True)
    assert fstack.scalar("select count(*) from outbox") == PATIENTS
    rcv.hold = False
    rcv.release.set()  # the receiver now answers the held requests normally

    # the lease (storage.subscriptions.CLAIM_LEASE, 120 s) must run out before anyone retries the
    # claimed delivery; instead of waiting two minutes, the test ends that one lease now
    with fstack.engine().begin() as c:
        expired = c.execute(sa.text("update webhook_deliveries set next_attempt_at = now() where state = 'pending'"
                                    " and next_attempt_at > now() + interval '60 seconds' returning id")).scalars()
        assert list(expired) == [held_sub]

    fstack.start_worker(concurrency=2)
    left = "select (select count(*) from outbox where state <> 'delivered')" \
           " + (select count(*) from webhook_deliveries where state <> 'delivered')"
    for _ in range(60):  # bounded: the sweeper re-drives what the killed worker held
        sweep = fstack.cli("sweep")
        assert sweep.returncode == 0, sweep.stderr
        if fstack.scalar(left) == 0:
            break
        time.sleep(0.5)
    assert fstack.scalar(left) == 0, fstack.worker_logs()[-3000:]

    # the database: one notification per alert, each recorded delivered exactly once, per path
    assert fstack.scalar("select count(*) from alerts") == PATIENTS
    assert fstack.scalar("select count(*) from outbox") == PATIENTS
    assert fstack.scalar("select count(distinct dedupe_key) from outbox") == PATIENTS
    assert fstack.scalar("select count(*) from outbox where state = 'delivered' and delivered_at is not null") == PATIENTS
    assert fstack.scalar("select count(*) from webhook_deliveries where subscription_id = :s", s=sub["id"]) == PATIENTS
    assert fstack.scalar("select count(distinct outbox_id) from webhook_deliveries") == PATIENTS
    assert fstack.scalar("select count(*) from webhook_deliveries where state = 'delivered' and attempts = 1"
                         " and delivered_at is not null") == PATIENTS

    # the receiver: every id at least once, all signed; repeats only for the requests in flight at
    # the kill, with the same delivery id and the same body
    assert all(x["signed"] for x in rcv.received)
    outbox_ids = {str(i) for (i,) in fstack.rows("select id from outbox")}
    delivery_ids = {str(i) for (i,) in fstack.rows("select id from webhook_deliveries")}
    for path, ids, held in (("/outbox", outbox_ids, held_outbox), ("/sub", delivery_ids, held_sub)):
        got = [x for x in rcv.received if x["path"] == path]
        seen = Counter(x["delivery"] for x in got)
        assert set(seen) == ids, path
        assert {d: n for d, n in seen.items() if n > 1} == {str(held): 2}, (path, seen)
        bodies = {x["body"] for x in got if x["delivery"] == str(held)}
        assert len(bodies) == 1, "a repeated delivery must carry the same body"
        assert all(str(json.loads(x["body"])["delivery_id"]) == x["delivery"] for x in got)
