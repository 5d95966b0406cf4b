"""Webhook targets (issue 12, item 10): no loopback, link-local, private or credential-bearing URLs
unless IMN_WEBHOOK_ALLOW_PRIVATE=1; the host is resolved again at delivery, every address is checked
and the request goes to the checked address (DNS rebinding); credentials are never shown.

Receivers are real HTTP servers on loopback; a host name's resolution is replaced by a table
(`url_safety.resolve`), so "rebind.test" can answer a public address at creation and loopback at
delivery, as a rebinding attacker's DNS server would."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from storage import subscriptions as subs
from storage.db import session
from tasks import notify, url_safety, webhooks
from tasks.settings import Settings
from tests.integration.feed.conftest_web import (  # noqa: F401
    app,
    bearer,
    client,
    cohort,
    ingest,
    keys,
    web_rt,
)

pytestmark = pytest.mark.integration
PUBLIC = "93.184.215.14"  # a public address (nothing is sent to it: tests pin it or are refused first)


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hosts: list[str] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    threading.Thread(target=r.serve_forever, daemon=True).start()
    yield r
    r.shutdown()
    r.server_close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """host -> successive answers (the last one repeats); unknown hosts do not resolve."""
    table: dict[str, list[list[str]]] = {}

    def resolve(host: str, port: int) -> list[str]:
        answers = table.get(host)
        if not answers:
            raise OSError(f"{host} does not resolve")
        return answers.pop(0) if len(answers) > 1 else answers[0]

    monkeypatch.setattr(url_safety, "resolve", resolve)
    return table


REFUSED = {
    "http://127.0.0.1:8080/hook": "loopback",
    "http://localhost/hook": "loopback",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://10.1.2.3/hook": "private",
    "http://192.168.0.10/hook": "private",
    "http://[::1]/hook": "loopback",
    "http://[::ffff:127.0.0.1]/hook": "loopback",
    "http://2130706433/hook": "loopback",  # 127.0.0.1 as one number: resolves to loopback
    "http://internal.test/hook": "private",  # a name resolving to a private address
}


def test_private_targets_and_credentials_are_refused_at_creation(web_rt, client, keys, dns) -> None:  # type: ignore[no-untyped-def]
    web_rt.settings.webhook_allow_private = False
    dns["internal.test"] = [["10.9.9.9"]]
    dns["2130706433"] = [["127.0.0.1"]]
    for url, kind in REFUSED.items():
        r = client.post("/webhooks", json={"name": "x", "url": url}, headers=bearer(keys.admin))
        assert r.status_code == 422 and kind in r.json()["detail"] and "IMN_WEBHOOK_ALLOW_PRIVATE" in r.text, (url, r.text)
    r = client.post("/webhooks", json={"name": "x", "url": f"https://alice:hunter2-secret@{PUBLIC}/hook"},
                    headers=bearer(keys.admin))
    assert r.status_code == 422 and "password" in r.text and "hunter2" not in r.text
    ok = client.post("/webhooks", json={"name": "public", "url": f"https://{PUBLIC}/hook"}, headers=bearer(keys.admin))
    assert ok.status_code == 201, ok.text
    web_rt.settings.webhook_allow_private = True  # the explicit opt-in admits the hospital's own network
    r = client.post("/webhooks", json={"name": "ward", "url": "http://10.1.2.3/hook"}, headers=bearer(keys.admin))
    assert r.status_code == 201, r.text


def _deliveries(rt, sub_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    with session(rt.engine, write=False) as s:
        return subs.list_deliveries(s, sub_id)


def test_a_host_that_rebinds_to_loopback_is_refused_at_delivery(web_rt, client, keys, dns, receiver) -> None:  # type: ignore[no-untyped-def]
    web_rt.settings.webhook_allow_private = False
    dns["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]  # public when created, loopback when delivered
    dns["mixed.test"] = [[PUBLIC, "10.0.0.7"]]  # one private address among public ones is enough
    r = client.post("/webhooks", json={"name": "rebind", "url": f"http://rebind.test:{receiver.port}/hook"},
                    headers=bearer(keys.admin))
    assert r.status_code == 201, r.text
    with session(web_rt.engine) as s:  # the API refuses mixed.test at creation: store it as a legacy row
        mixed, _ = subs.create_subscription(s, "mixed", f"http://mixed.test:{receiver.port}/hook", None,
                                            datetime.now(UTC), "m" * 16)
    ingest(web_rt, cohort())  # alerts -> outbox -> fan-out -> delivery attempts (embedded)
    webhooks.deliver_due(web_rt)
    assert receiver.hosts == []
    rebound = _deliveries(web_rt, r.json()["id"])
    assert rebound and all("127.0.0.1" in d["last_error"] and "loopback" in d["last_error"] for d in rebound)
    assert all("10.0.0.7" in d["last_error"] for d in _deliveries(web_rt, mixed["id"]))


def test_delivery_connects_to_the_address_it_checked(web_rt, dns, receiver) -> None:  # type: ignore[no-untyped-def]
    """hook.invalid resolves only through the checked table: the request reaching the receiver proves
    the client connected to the checked address instead of resolving the name again."""
    dns["hook.invalid"] = [["127.0.0.1"]]
    with session(web_rt.engine) as s:
        sub, _ = subs.create_subscription(s, "pinned", f"http://hook.invalid:{receiver.port}/hook", None,
                                          datetime.now(UTC), "p" * 16)
    ingest(web_rt, cohort())
    assert receiver.hosts and set(receiver.hosts) == {f"hook.invalid:{receiver.port}"}
    assert {d["state"] for d in _deliveries(web_rt, sub["id"])} == {"delivered"}


def test_credentials_in_stored_urls_are_never_shown(web_rt, client, keys, dns, caplog) -> None:  # type: ignore[no-untyped-def]
    """A subscription stored before URLs were checked, with a password and a token in its URL."""
    dns["creds.test"] = [["127.0.0.1"]]
    url = "http://alice:hunter2-secret@creds.test:9/hook?token=tok-secret-42"
    with session(web_rt.engine) as s:
        sub, _ = subs.create_subscription(s, "legacy", url, None, datetime.now(UTC), "c" * 16)
    caplog.set_level(logging.DEBUG)
    ingest(web_rt, cohort())
    webhooks.deliver_due(web_rt)
    shown = [client.get("/webhooks", headers=bearer(keys.clinician)).text,
             client.get("/webhooks", headers=bearer(keys.admin)).text,
             client.get(f"/webhooks/{sub['id']}/deliveries", headers=bearer(keys.clinician)).text,
             caplog.text]
    assert "creds.test:9/hook" in shown[0] and "token=***" in shown[0]
    for text in shown:
        assert "hunter2" not in text and "tok-secret" not in text and "alice" not in text
    assert all(d["last_error"] for d in _deliveries(web_rt, sub["id"]))


def test_imn_webhook_url_is_checked_at_start_up_and_at_delivery(web_rt, dns, receiver) -> None:  # type: ignore[no-untyped-def]
    for url in ("http://169.254.169.254/latest", "http://127.0.0.1:9/hook", "http://u:hunter2-secret@example.org/"):
        with pytest.raises(ValidationError) as err:
            Settings(webhook_url=url, webhook_secret="s3cr3t-value-0123456789", webhook_allow_private=False,
                     _env_file=None)
        assert "IMN_WEBHOOK_URL" in str(err.value)
        assert "hunter2" not in str(err.value) and "s3cr3t" not in str(err.value)
    Settings(webhook_url="http://127.0.0.1:9/hook", webhook_allow_private=True, _env_file=None)
    # the outbox path (one IMN_WEBHOOK_URL) resolves at delivery too
    dns["outbox.test"] = [["127.0.0.1"]]
    web_rt.settings.webhook_allow_private = False
    web_rt.settings.webhook_url = f"http://outbox.test:{receiver.port}/hook"
    ingest(web_rt, cohort())
    with web_rt.engine.connect() as c:
        rows = c.exec_driver_sql("select state, last_error from outbox").all()
    assert rows and receiver.hosts == []
    assert all(state == "pending" and "loopback" in error for state, error in rows)
    web_rt.settings.webhook_allow_private = True
    with web_rt.engine.connect() as c:
        ids = [r[0] for r in c.exec_driver_sql("select id from outbox")]
        c.exec_driver_sql("update outbox set next_attempt_at = null")
        c.commit()
    assert {notify.deliver(web_rt, i) for i in ids} == {"delivered"}
    assert set(receiver.hosts) == {f"outbox.test:{receiver.port}"}
