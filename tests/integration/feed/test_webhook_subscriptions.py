"""Webhook subscriptions: signed fan-out to real HTTP receivers on loopback, retries, dead letters,
filters, and the /webhooks endpoints' roles."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storage import subscriptions as subs
from storage.db import session
from tasks import notify, service
from tests.integration.feed.conftest_web import (
    app,
    bearer,
    client,
    cohort,
    ingest,
    keys,
    web_rt,
)

pytestmark = pytest.mark.integration


class Receiver(ThreadingHTTPServer):
    def __init__(self, secret: str, up: bool = True, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret, self.up, self.status = secret.encode(), up, status
        self.received: list[dict] = []
        self.bad_signatures = 0
        self.attempts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.attempts += 1
        if not self.server.up:
            self.send_response(503)
            self.end_headers()
            return
        if not notify.verify(self.server.secret, self.headers["X-IMN-Timestamp"], body,
                             self.headers["X-IMN-Signature"]):
            self.server.bad_signatures += 1
            self.send_response(401)
            self.end_headers()
            return
        payload = json.loads(body)
        assert str(payload["delivery_id"]) == self.headers["X-IMN-Delivery"]
        self.server.received.append({"delivery": self.headers["X-IMN-Delivery"], **payload})
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.shutdown()
        r.server_close()


def _receiver(made: list[Receiver], secret: str, **kw: object) -> Receiver:
    r = Receiver(secret, **kw)  # type: ignore[arg-type]
    threading.Thread(target=r.serve_forever, daemon=True).start()
    made.append(r)
    return r


def _subscribe(rt, name: str, url: str, secret: str, filters: dict | None = None) -> int:  # type: ignore[no-untyped-def]
    with session(rt.engine) as s:
        sub, _ = subs.create_subscription(s, name, url, filters, datetime.now(UTC), secret)
    return sub["id"]


def _states(rt, sub_id: int) -> Counter:  # type: ignore[no-untyped-def]
    with session(rt.engine, write=False) as s:
        return Counter(d["state"] for d in subs.list_deliveries(s, sub_id))


def _outbox(rt) -> list[dict]:  # type: ignore[no-untyped-def]
    with rt.engine.connect() as c:
        return [dict(r._mapping) for r in c.exec_driver_sql("select id, payload from outbox")]


def test_every_subscription_gets_its_matching_notifications_signed(web_rt, receivers) -> None:  # type: ignore[no-untyped-def]
    everything = _receiver(receivers, "secret-of-all-0123456789")
    critical = _receiver(receivers, "secret-of-crit-0123456789")
    one_patient = _receiver(receivers, "secret-of-pcsa-0123456789")
    a = _subscribe(web_rt, "all", everything.url, "secret-of-all-0123456789")
    c = _subscribe(web_rt, "critical", critical.url, "secret-of-crit-0123456789", {"severities": ["critical"]})
    p = _subscribe(web_rt, "P-CSA", one_patient.url, "secret-of-pcsa-0123456789",
                   {"patients": ["P-CSA"], "rules": ["csa_trough_low"]})
    ingest(web_rt, cohort())  # the embedded default delivers inline
    outbox = _outbox(web_rt)
    # one notification group per patient: one outbox row and one delivery per receiver each
    assert sorted(_payload(o)["patient_id"] for o in outbox) == ["P-ALB", "P-CSA", "P-RTX"]
    assert sorted(r["outbox_id"] for r in everything.received) == sorted(o["id"] for o in outbox)
    by_id = {o["id"]: _payload(o) for o in outbox}
    for r in everything.received:  # the unfiltered receiver gets each whole group, version 1
        assert (r["kind"], r["version"], r["group"]) == ("alert_group", 1, f"patient:{r['patient_id']}")
        assert r["changes"] == by_id[r["outbox_id"]]["changes"] and r["changes"]
        assert {c["alert"]["patient_id"] for c in r["changes"]} == {r["patient_id"]}
    # a filtered receiver gets the groups with a matching change, holding only the matching changes
    assert {c["alert"]["severity"] for r in critical.received for c in r["changes"]} == {"critical"}
    assert len(critical.received) == sum(1 for o in outbox if any(c["alert"]["severity"] == "critical"
                                                                   for c in _payload(o)["changes"]))
    assert [(c["alert"]["patient_id"], c["alert"]["rule"]) for r in one_patient.received for c in r["changes"]] == [
        ("P-CSA", "csa_trough_low")]
    assert all(r.bad_signatures == 0 for r in receivers)
    assert _states(web_rt, a) == Counter(delivered=len(outbox))
    assert set(_states(web_rt, c)) == {"delivered"} and set(_states(web_rt, p)) == {"delivered"}
    # a second pass (the sweeper) changes nothing: fan-out is idempotent
    service.send_due_notifications(web_rt)
    assert len(everything.received) == len(outbox)


def _payload(o: dict) -> dict:
    return o["payload"] if isinstance(o["payload"], dict) else json.loads(o["payload"])


def test_receiver_down_then_up_gets_every_notification_exactly_once(web_rt, receivers) -> None:  # type: ignore[no-untyped-def]
    web_rt.settings.webhook_backoff_s = 0.05
    rcv = _receiver(receivers, "down-then-up-0123456789", up=False)
    sub = _subscribe(web_rt, "flaky", rcv.url, "down-then-up-0123456789")
    ingest(web_rt, cohort())
    assert rcv.received == [] and rcv.attempts >= 3
    assert set(_states(web_rt, sub)) == {"pending"}
    rcv.up = True
    deadline = time.monotonic() + 20
    while set(_states(web_rt, sub)) != {"delivered"} and time.monotonic() < deadline:
        service.send_due_notifications(web_rt)
        time.sleep(0.05)
    ids = Counter(r["delivery"] for r in rcv.received)
    assert len(ids) == len(_outbox(web_rt)) and set(ids.values()) == {1}
    with session(web_rt.engine, write=False) as s:
        rows = subs.list_deliveries(s, sub)
    assert all(d["attempts"] >= 2 and d["delivered_at"] for d in rows)


def test_dead_after_max_attempts(web_rt, receivers) -> None:  # type: ignore[no-untyped-def]
    web_rt.settings.webhook_backoff_s = 0.01
    web_rt.settings.webhook_max_attempts = 3
    rcv = _receiver(receivers, "always-failing-0123456789", status=500)
    sub = _subscribe(web_rt, "broken", rcv.url, "always-failing-0123456789")
    ingest(web_rt, cohort())
    deadline = time.monotonic() + 20
    while set(_states(web_rt, sub)) != {"dead"} and time.monotonic() < deadline:
        service.send_due_notifications(web_rt)
        time.sleep(0.03)
    with session(web_rt.engine, write=False) as s:
        rows = subs.list_deliveries(s, sub)
    assert rows and all(d["state"] == "dead" and d["attempts"] == 3 and d["last_error"] == "HTTP 500" for d in rows)
    before = rcv.attempts
    service.send_due_notifications(web_rt)
    assert rcv.attempts == before  # dead is dead


def test_webhook_endpoints_roles_and_delivery_status(web_rt, client, keys, receivers) -> None:  # type: ignore[no-untyped-def]
    rcv = _receiver(receivers, "x" * 16)
    body = {"name": "ward-feed", "url": rcv.url, "filters": {"severities": ["critical"]}}
    assert client.post("/webhooks", json=body).status_code == 401
    assert client.post("/webhooks", json=body, headers=bearer(keys.ingest)).status_code == 403
    assert client.post("/webhooks", json=body, headers=bearer(keys.clinician)).status_code == 403
    assert client.get("/webhooks", headers=bearer(keys.ingest)).status_code == 403
    bad = client.post("/webhooks", json={**body, "url": "ftp://x"}, headers=bearer(keys.admin))
    assert bad.status_code == 422
    r = client.post("/webhooks", json=body, headers=bearer(keys.admin))
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert len(secret) >= 32 and created["filters"] == {"severities": ["critical"]}
    listed = client.get("/webhooks", headers=bearer(keys.clinician)).json()
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    rcv.secret = secret.encode()
    ingest(web_rt, cohort())
    d = client.get(f"/webhooks/{created['id']}/deliveries", headers=bearer(keys.clinician)).json()
    assert d["counts"] == {"delivered": len(rcv.received)} and len(rcv.received) >= 1
    assert d["deliveries"][0]["kind"] == "alert_group" and d["deliveries"][0]["patient_id"]
    assert client.delete(f"/webhooks/{created['id']}", headers=bearer(keys.clinician)).status_code == 403
    assert client.delete(f"/webhooks/{created['id']}", headers=bearer(keys.admin)).status_code == 204
    assert client.delete(f"/webhooks/{created['id']}", headers=bearer(keys.admin)).status_code == 404
    assert client.get("/webhooks", headers=bearer(keys.admin)).json() == []
    assert client.get("/webhooks/999/deliveries", headers=bearer(keys.admin)).status_code == 404
