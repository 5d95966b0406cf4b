"""Fault: the celery worker SIGKILLed while it is delivering notifications, on both delivery paths:
the single IMN_WEBHOOK_URL (one `outbox` row per patient's alert group; one alert per patient here)
and a webhook subscription (one `webhook_deliveries` row per outbox row and subscription).

A real HTTP receiver on loopback kills the worker from inside the request: the first request on each
path, once its body is read, SIGKILLs the whole worker (parent and child) before it answers 200 to the
dead socket. So each kill lands while the worker is certainly inside that POST, waiting for the
answer, whatever the load on the machine (a receiver that only held the request open and left the
kill to the test could see the sender's HTTP timeout first, and an attempt recorded before the kill).
The worker runs one task at a time (concurrency 1), so that request is the only one in flight at
each kill. After the first kill a new worker delivers the rest until the other path's first request
kills it too; then a new worker and the sweeper deliver everything.

The guarantee is at-least-once with a stable delivery id (X-IMN-Delivery): the database records each
notification delivered exactly once, and the receiver sees every id at least once; the only repeats
are the two requests that were in flight at the kills, sent again with the same delivery id and the
same body, so the receiver can deduplicate on it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
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
PATHS = ("/outbox", "/sub")


class KillingReceiver(ThreadingHTTPServer):
    """Records every request. The first request on each path in `kill_on` runs `on_arrival` (which
    kills the sender) before it is answered; the path is then taken out of `kill_on`."""

    daemon_threads = True

    def __init__(self, secrets: dict[str, str], on_arrival: Callable[[], None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secrets = {path: s.encode() for path, s in secrets.items()}
        self.on_arrival = on_arrival
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.kill_on = set(PATHS)
        self.killed: dict[str, str] = {}  # path -> delivery id of the request in flight at its kill
        self.kill_done = threading.Condition(self.lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def wait_kills(self, n: int, timeout: float) -> bool:
        with self.kill_done:
            return self.kill_done.wait_for(lambda: len(self.killed) >= n, timeout)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        pass  # the answer to a killed worker's closed socket fails: expected here


class _Handler(BaseHTTPRequestHandler):
    server: KillingReceiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = notify.verify(self.server.secrets[self.path], self.headers["X-IMN-Timestamp"], body,
                           self.headers["X-IMN-Signature"])
        delivery = self.headers["X-IMN-Delivery"]
        with self.server.lock:
            self.server.received.append({"path": self.path, "delivery": delivery, "body": body, "signed": ok})
            kill = self.path in self.server.kill_on
            if kill:
                self.server.kill_on.discard(self.path)
                # the sender is waiting for this answer: kill it now, then answer a dead socket
                self.server.on_arrival()
                self.server.killed[self.path] = delivery
                self.server.kill_done.notify_all()
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_worker_killed_while_delivering_every_notification_delivered_once(fstack: FaultStack) -> None:
    rcv = KillingReceiver({"/outbox": OUTBOX_SECRET, "/sub": SUB_SECRET}, on_arrival=fstack.kill_workers)
    threading.Thread(target=rcv.serve_forever, daemon=True).start()
    try:
        _run(fstack, rcv)
    finally:
        rcv.shutdown()
        rcv.server_close()


def _run(fstack: FaultStack, rcv: KillingReceiver) -> None:
    fstack.extra.update(IMN_WEBHOOK_URL=rcv.url("/outbox"), IMN_WEBHOOK_SECRET=OUTBOX_SECRET,
                        IMN_WEBHOOK_BACKOFF_S="0.5")
    fstack.extra.update(IMN_WEBHOOK_ALLOW_PRIVATE="1")  # the receiver is on loopback
    with session(fstack.engine()) as s:
        sub, _ = subs.create_subscription(s, "faults", rcv.url("/sub"), None, datetime.now(UTC), SUB_SECRET)
    # as_of is today (no --as-of), as in production, so a re-drive by the sweeper assesses the same day
    today = datetime.now(UTC).date()
    f = write(fstack.tmp / "cohort.ndjson", cohort(PATIENTS, history=2, prefix="WH",
                                                    recent=(today - timedelta(days=5)).isoformat()))
    r = fstack.cli("ingest", str(f), "--no-wait", "--json")  # queued; the worker below runs it
    assert r.returncode == 0, r.stderr

    # one worker ingests, reassesses and starts delivering until the first request on either path
    # kills it; a second one delivers the rest until the first request on the other path kills it
    counts_at_kill = []
    for kills in (1, 2):
        fstack.start_worker(concurrency=1)
        assert rcv.wait_kills(kills, timeout=300), (rcv.killed, fstack.worker_logs()[-3000:])
        assert not fstack.workers, "the receiver must have killed the worker"
        counts_at_kill.append(len(rcv.received))
    held_outbox, held_sub = int(rcv.killed["/outbox"]), int(rcv.killed["/sub"])
    print(f"webhook kill: in flight outbox {held_outbox}, subscription delivery {held_sub}; "
          f"{counts_at_kill} requests received by the kills")
    assert fstack.scalar("select sum((counts->>'accepted')::int) from inbox") == PATIENTS * 5
    assert fstack.scalar("select count(*) from alerts") == PATIENTS
    # the killed attempts recorded nothing: the outbox row's transaction (which held its lock during
    # the POST) died with the connection; the subscription delivery is still claimed by its lease
    row = fstack.rows("select state, attempts from outbox where id = :i", i=held_outbox)[0]
    assert (row.state, row.attempts) == ("pending", 0)
    row = fstack.rows("select state, attempts, next_attempt_at > now() + interval '60 seconds' as leased"
                      " from webhook_deliveries where id = :i", i=held_sub)[0]
    assert (row.state, row.attempts, row.leased) == ("pending", 0, True)
    assert fstack.scalar("select count(*) from outbox") == PATIENTS

    # the lease (storage.subscriptions.CLAIM_LEASE, 120 s) must run out before anyone retries the
    # claimed delivery; instead of waiting two minutes, the test ends that one lease now
    with fstack.engine().begin() as c:
        expired = c.execute(sa.text("update webhook_deliveries set next_attempt_at = now() where state = 'pending'"
                                    " and next_attempt_at > now() + interval '60 seconds' returning id")).scalars()
        assert list(expired) == [held_sub]

    fstack.start_worker(concurrency=2)
    left = "select (select count(*) from outbox where state <> 'delivered')" \
           " + (select count(*) from webhook_deliveries where state <> 'delivered')"
    fstack.sweep_until(lambda: fstack.scalar(left) == 0, every=0.5)  # re-drives what the killed workers held

    # the database: one notification group per patient, each recorded delivered exactly once, per path
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
