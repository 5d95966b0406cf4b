"""GET /stream/alerts on a real server: resumable with Last-Event-ID (= alert_audit id)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
from sqlalchemy import text

from .conftest import Feed


def read_events(base: str, headers: dict[str, str], want: int, timeout: float = 10.0,
                params: dict[str, Any] | None = None, during: Any = None) -> list[dict[str, Any]]:
    """Read `want` alert events (id + JSON data) from the stream, then hang up."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, read=2.0)) as c, \
            c.stream("GET", "/stream/alerts", headers=headers, params=params or {}) as r:
        assert r.status_code == 200
        if during is not None:
            threading.Timer(0.3, during).start()
        for line in r.iter_lines():
            assert time.monotonic() < deadline, f"only {len(events)} of {want} events"
            if line.startswith("id:"):
                current["id"] = int(line[3:].strip())
            elif line.startswith("event:"):
                current["event"] = line[6:].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line[5:].strip())
            elif line == "" and "data" in current:
                events.append(current)
                current = {}
                if len(events) >= want:
                    break
    return events


def audit_ids(feed: Feed) -> list[int]:
    with feed.rt.engine.connect() as c:
        return [r[0] for r in c.execute(text("select id from alert_audit order by id"))]


def test_resume_with_last_event_id_gets_every_change_after_it(feed: Feed, live: str) -> None:
    ids = audit_ids(feed)
    assert len(ids) >= 12
    resume_after = ids[4]
    expected = [i for i in ids if i > resume_after]
    h = {**feed.auth("clinician"), "Last-Event-ID": str(resume_after)}
    events = read_events(live, h, len(expected))
    assert [e["id"] for e in events] == expected
    first = events[0]
    assert first["event"] == "alert" and first["data"]["event_id"] == expected[0]
    assert first["data"]["alert"]["id"] and first["data"]["action"] == "fired"


def test_live_changes_arrive_and_reconnect_resumes(feed: Feed, live: str) -> None:
    h = feed.auth("clinician")
    last = audit_ids(feed)[-1]
    target = feed.client.get("/alerts", params={"patient": "P007"}, headers=h).json()["items"][0]["id"]

    def act() -> None:
        feed.client.post(f"/alerts/{target}/comment", json={"text": "first"}, headers=h)
        feed.client.post(f"/alerts/{target}/comment", json={"text": "second"}, headers=h)

    # a new client (no Last-Event-ID) sees only what happens after it connected
    events = read_events(live, h, 1, during=act)
    assert events[0]["id"] > last and events[0]["data"]["comment"] == "first"
    assert events[0]["data"]["actor"] == "clinician-tester"
    # it reconnects with the last id it saw and gets the rest
    rest = read_events(live, {**h, "Last-Event-ID": str(events[0]["id"])}, 1)
    assert rest[0]["data"]["comment"] == "second" and rest[0]["id"] > events[0]["id"]
