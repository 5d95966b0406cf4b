"""The clinician page's sessions and the feed's response headers (issue 12, item 11): the cookie holds
a random session token (never the API key); sessions end when idle, at their maximum age, on log-out
and when their key is revoked; Secure follows https, as seen directly or from a trusted proxy only;
patient data is never cacheable, nothing is sniffed, and a submitted key is never echoed."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from feed.app import create_app
from storage import api_keys
from storage.db import session
from storage.models import UserSessionRow
from tests.integration.feed.conftest_web import (  # noqa: F401
    app,
    bearer,
    client,
    keys,
    seeded,
    web_rt,
)

pytestmark = pytest.mark.integration


def _login(c: TestClient, key: str, **kw: object) -> str:
    r = c.post("/ui/login", data={"key": key, "next": "/"}, follow_redirects=False, **kw)  # type: ignore[arg-type]
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"]


def _sessions(rt) -> list[dict]:  # type: ignore[no-untyped-def]
    with rt.engine.connect() as c:
        return [dict(r._mapping) for r in c.exec_driver_sql("select * from user_sessions order by id")]


def _shift(rt, **columns: timedelta) -> None:  # type: ignore[no-untyped-def]
    """Move session timestamps into the past (instead of waiting), through the typed table."""
    t = UserSessionRow.__table__  # type: ignore[attr-defined]
    with session(rt.engine) as s:
        for row in s.execute(sa.select(t)).all():
            s.execute(sa.update(t).where(t.c.id == row.id)
                      .values({k: getattr(row, k) - d for k, d in columns.items()}))


def test_the_cookie_holds_a_random_session_token_not_the_key(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    cookie = _login(client, keys.clinician)
    token = client.cookies["imn_session"]
    assert keys.clinician not in cookie and keys.clinician[:12] not in cookie and len(token) >= 40
    assert f"Max-Age={seeded.settings.session_max_age_s}" in cookie and "HttpOnly" in cookie
    [row] = _sessions(seeded)
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest() and token not in str(row)
    assert (row["actor"], row["role"], row["auth_method"]) == ("dr-clinician", "clinician", "api_key")
    assert row["api_key_id"] is not None and row["patient_id"] is None
    assert client.get("/").status_code == 200


def test_a_session_ends_when_idle_but_use_keeps_it_alive(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    idle = timedelta(seconds=seeded.settings.session_idle_timeout_s)
    _login(client, keys.clinician)
    _shift(seeded, last_seen_at=idle - timedelta(minutes=2))  # used 2 minutes before the timeout
    assert client.get("/", follow_redirects=False).status_code == 200
    with session(seeded.engine, write=False) as s:
        seen = s.execute(sa.select(UserSessionRow.last_seen_at)).scalar_one()
    assert datetime.now(UTC) - seen < timedelta(minutes=1)  # that use moved last_seen_at
    _shift(seeded, last_seen_at=idle + timedelta(seconds=1))
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    assert client.get("/patients/P-RTX/chart.png").status_code == 401  # the chart's cookie path too


def test_a_session_ends_at_its_maximum_age_however_busy(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    _login(client, keys.clinician)
    _shift(seeded, expires_at=timedelta(seconds=seeded.settings.session_max_age_s + 1))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    _login(client, keys.clinician)
    assert client.get("/", follow_redirects=False).status_code == 200
    with session(seeded.engine) as s:
        api_keys.revoke(s, keys.clinician[:12])
    assert client.get("/", follow_redirects=False).status_code == 303
    assert _sessions(seeded)[0]["revoked_at"] is not None


def test_log_out_ends_the_session_on_the_server(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    _login(client, keys.clinician)
    token = client.cookies["imn_session"]
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', client.get("/").text).group(1)
    assert client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set("imn_session", token)  # a copy of the cookie kept from before the log-out
    assert client.get("/", follow_redirects=False).status_code == 303
    assert _sessions(seeded)[0]["revoked_at"] is not None


def test_secure_cookie_over_https_or_from_a_trusted_proxy_only(seeded, keys) -> None:  # type: ignore[no-untyped-def]
    https = {"X-Forwarded-Proto": "https"}
    with TestClient(create_app(seeded), base_url="https://testserver") as c:
        assert "Secure" in _login(c, keys.clinician)
    with TestClient(create_app(seeded), client=("10.1.2.3", 50000)) as c:  # no proxy configured
        assert "Secure" not in _login(c, keys.clinician, headers=https)
    seeded.settings.trusted_proxies = "10.0.0.0/8, 192.0.2.1"
    with TestClient(create_app(seeded), client=("10.1.2.3", 50000)) as c:
        assert "Secure" in _login(c, keys.clinician, headers=https)
        assert "Secure" not in _login(c, keys.clinician)
    with TestClient(create_app(seeded), client=("198.51.100.7", 50000)) as c:  # not a trusted proxy
        assert "Secure" not in _login(c, keys.clinician, headers=https)


def test_patient_data_is_never_cached_and_nothing_is_sniffed(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    h = bearer(keys.clinician)
    data = ["/alerts", "/alerts/1", "/patients/P-ALB", "/patients/P-ALB/timeline", "/patients/P-RTX/chart.png",
            "/fhir/Flag", "/fhir/Flag/1", "/webhooks", "/patients/NOPE", "/alerts?since=nonsense"]
    for path in data:
        r = client.get(path, headers=h)
        assert "no-store" in r.headers.get("cache-control", ""), (path, r.headers)
        assert r.headers.get("x-content-type-options") == "nosniff", path
    _login(client, keys.clinician)
    for path in ("/", "/ui/patients/P-RTX", "/healthz", "/metrics", "/openapi.json", "/no/such/route"):
        r = client.get(path)
        assert r.headers.get("x-content-type-options") == "nosniff", path
        assert "no-store" in r.headers.get("cache-control", ""), path


def test_a_submitted_key_or_secret_is_never_echoed(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    long_key = "imn_" + "K7q" * 120  # longer than the form allows: a 422
    r = client.post("/ui/login", data={"key": long_key})
    assert r.status_code == 422 and "K7qK7q" not in r.text and "key" in r.text
    wrong = "imn_" + "Zx9" * 14 + "a"
    r = client.post("/ui/login", data={"key": wrong})
    assert r.status_code == 401 and "Zx9Zx9" not in r.text
    r = client.get("/alerts", headers=bearer(wrong))
    assert r.status_code == 401 and "Zx9Zx9" not in r.text
    r = client.post("/webhooks", json={"name": "w", "url": "http://127.0.0.1:9/h", "secret": "Sh0rtS3cret"},
                    headers=bearer(keys.admin))
    assert r.status_code == 422 and "Sh0rtS3cret" not in r.text and "secret" in r.text
