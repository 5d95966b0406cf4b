"""Every endpoint x every role: allowed roles get the endpoint's answer, others 403; no key or a
wrong key 401 with WWW-Authenticate: Bearer. The open endpoints answer without a key."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Feed

ND = ("application/x-ndjson",
      b'{"type":"lab","patient_id":"P000","analyte":"serum_albumin","value":19,"unit":"g/L","effective_at":"2025-05-20"}\n')
FHIR = ("application/fhir+json",
        b'{"resourceType":"Patient","id":"P-role","birthDate":"1970-01-01","gender":"female"}')
HL7 = ("x-application/hl7-v2+er7",
       b"MSH|^~\\&|LIS|HOSP|IMN|NEPH|20250301093000||ORU^R01^ORU_R01|R1|P|2.5.1\r"
       b"PID|1||P-role^^^HOSP^MR||Doe^Jane||19680302|F\r"
       b"OBR|1|ORD-1|F-R1^LIS|24326-1^Panel^LN|||20250301080000\r"
       b"OBX|1|NM|1751-7^Albumin^LN||30|g/L|35-50|L|||F|||20250301080000\r")
MISSING = 999_999
I, C, A = "ingest", "clinician", "admin"

# (method, path, body (content-type, bytes) or json, allowed roles, status for an allowed role)
ENDPOINTS = [
    ("POST", "/ingest/ndjson", ND, {I, A}, 202),
    ("POST", "/ingest/fhir", FHIR, {I, A}, 202),
    ("POST", "/ingest/hl7v2", HL7, {I, A}, 202),
    ("GET", "/inbox/1", None, {I, A}, 200),
    ("GET", "/alerts", None, {C, A}, 200),
    ("GET", "/alerts/1", None, {C, A}, 200),
    ("POST", f"/alerts/{MISSING}/acknowledge", {}, {C, A}, 404),
    ("POST", "/alerts/1/assign", {"assignee": "dr.meyer"}, {C, A}, 200),
    ("POST", f"/alerts/{MISSING}/snooze", {"until": "2099-01-01T00:00:00Z"}, {C, A}, 404),
    ("POST", f"/alerts/{MISSING}/resolve", {"comment": "done"}, {C, A}, 404),
    ("POST", "/alerts/1/comment", {"text": "seen"}, {C, A}, 200),
    ("GET", "/patients/P000", None, {C, A}, 200),
    ("GET", "/patients/P000/timeline", None, {C, A}, 200),
    ("GET", "/fhir/Flag?patient=P000", None, {C, A}, 200),
    ("GET", "/fhir/Flag/1", None, {C, A}, 200),
    ("GET", "/keys", None, {A}, 200),
]
OPEN = [("GET", "/healthz", 200), ("GET", "/readyz", 200), ("GET", "/metrics", 200)]


def _call(feed: Feed, method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    if isinstance(body, tuple):
        return feed.client.request(method, path, content=body[1], headers={**headers, "Content-Type": body[0]})
    return feed.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("role", ["ingest", "clinician", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "allowed", "expected"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS])
def test_role_table(feed: Feed, role: str, method: str, path: str, body: object, allowed: set[str],
                    expected: int) -> None:
    r = _call(feed, method, path, body, feed.auth(role))
    if role in allowed:
        assert r.status_code == expected, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json() == {"detail": f"forbidden for role {role}"}


@pytest.mark.parametrize("auth", [None, "Bearer imn_not-a-key", "Bearer ", "Basic dXNlcjpwYXNz", "imn_x"])
@pytest.mark.parametrize(("method", "path", "body", "allowed", "expected"), ENDPOINTS + [
    ("GET", "/stream/alerts", None, {C, A}, 200)], ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS] + ["GET /stream"])
def test_missing_or_invalid_key_is_401(feed: Feed, auth: str | None, method: str, path: str, body: object,
                                       allowed: set[str], expected: int) -> None:
    r = _call(feed, method, path, body, {"Authorization": auth} if auth else {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json() == {"detail": "missing or invalid API key"}


def test_a_revoked_key_is_401(feed: Feed) -> None:
    from storage import api_keys
    from storage.db import session

    with session(feed.rt.engine) as s:
        token, key = api_keys.create_key(s, "short-lived", "admin")
    assert feed.client.get("/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with session(feed.rt.engine) as s:
        api_keys.revoke(s, key.prefix)
    assert feed.client.get("/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize(("method", "path", "expected"), OPEN)
def test_operations_endpoints_are_open(feed: Feed, method: str, path: str, expected: int) -> None:
    assert feed.client.request(method, path).status_code == expected


@pytest.mark.parametrize("role", ["ingest", "clinician", "admin"])
def test_stream_roles(feed: Feed, live: str, role: str) -> None:
    """The stream is infinite: check the status on a real server, then hang up."""
    with httpx.Client(base_url=live, timeout=5) as c, c.stream("GET", "/stream/alerts",
                                                                 headers=feed.auth(role)) as r:
        assert r.status_code == (200 if role in (C, A) else 403)
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("text/event-stream")


def test_keys_listing_never_shows_a_key_or_hash(feed: Feed) -> None:
    rows = feed.client.get("/keys", headers=feed.auth("admin")).json()
    assert {"ingest-tester", "clinician-tester", "admin-tester"} <= {r["name"] for r in rows}
    text = str(rows)
    assert all(tok not in text for tok in feed.keys.values())
    assert "hash" not in text
