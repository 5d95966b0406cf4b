"""No request parameter, however odd, gets a 5xx (issue 12, item 9): zone offsets that push a date-time
out of the years 1-9999, forged cursors with huge ids or impossible dates, as_of dates the chart cannot
draw, strings a database cannot store (NUL, lone surrogates), on SQLite and on PostgreSQL (which
refuses NUL where SQLite stores it).

Property tests (hypothesis) over each family of parameters; the cases that gave 500 before the fix
are pinned as explicit examples, so they run on every run."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feed import create_app
from feed.queries import SORTS, AlertFilter
from storage import api_keys
from storage.db import session, upgrade
from tasks import runtime
from tasks.settings import Settings
from tests.integration.pipeline.conftest import pg_url  # noqa: F401  (a private PostgreSQL database)

from .conftest import Feed, cohort, seed

pytestmark = pytest.mark.integration

EXAMPLES = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
OK_OR_REFUSED = {200, 400, 404, 409, 422}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_feed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bad') / 'feed.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.begin() as c:
            c.execute(sa.text("drop schema public cascade; create schema public"))
        engine.dispose()
    rt = runtime.init(Settings(database_url=url, broker_url=None, _env_file=None))
    upgrade(rt.engine)
    seed(rt, cohort(3), "cohort.ndjson")
    with session(rt.engine) as s:
        keys = {"admin": api_keys.create_key(s, "admin-tester", "admin")[0]}
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield Feed(rt, client.app, client, keys)  # type: ignore[arg-type]
    runtime.reset()


def _no_5xx(r: Any, allowed: set[int] = OK_OR_REFUSED) -> None:
    assert r.status_code < 500 and r.status_code in allowed, (r.status_code, r.request.url, r.text[:300])


# offsets up to ±23:59 (what fromisoformat accepts), at minute precision
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
any_datetime = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                            timezones=st.none() | offsets)
iso_or_junk = any_datetime.map(datetime.isoformat) | st.dates().map(date.isoformat) | st.text(max_size=40)
# what a URL can carry (httpx cannot encode a lone surrogate); NUL included
url_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64)


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@EXAMPLES
@given(since=iso_or_junk)
@example(since="0001-01-01T00:00:00+05:00")
@example(since="9999-12-31T23:59:59-23:59")
@example(since="0001-01-01")
def test_since_never_5xx(any_feed: Feed, since: str) -> None:
    r = any_feed.client.get("/alerts", params={"since": since}, headers=any_feed.auth("admin"))
    _no_5xx(r, {200, 400, 422})


def test_since_without_a_utc_instant_is_a_400_that_says_why(any_feed: Feed) -> None:
    r = any_feed.client.get("/alerts", params={"since": "0001-01-01T00:00:00+05:00"}, headers=any_feed.auth("admin"))
    assert r.status_code == 400 and "no UTC equivalent" in r.json()["detail"]


key_value = (st.integers(-(2**80), 2**80) | any_datetime.map(datetime.isoformat) | st.text(max_size=30)
             | st.floats(allow_nan=False) | st.booleans() | st.none())


@EXAMPLES
@given(sort=st.sampled_from(SORTS), order=st.sampled_from(["asc", "desc"]),
       values=st.lists(key_value, min_size=2, max_size=3))
@example(sort="raised_at", order="desc", values=["2025-01-01T00:00:00", 2**70])
@example(sort="raised_at", order="desc", values=["0001-01-01T00:00:00+05:00", 1])
@example(sort="updated_at", order="asc", values=["9999-12-31T23:00:00-05:00", 1])
@example(sort="severity", order="desc", values=[2**70, "2025-01-01T00:00:00", 1])
@example(sort="severity", order="desc", values=[2, "2025-01-01T00:00:00", -(2**64)])
def test_forged_cursors_never_5xx(any_feed: Feed, sort: str, order: str, values: list[Any]) -> None:
    cursor = _cursor({"s": sort, "o": order, "f": AlertFilter().digest(), "v": values})
    r = any_feed.client.get("/alerts", params={"sort": sort, "order": order, "cursor": cursor},
                            headers=any_feed.auth("admin"))
    _no_5xx(r, {200, 400})


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(as_of=st.dates())
@example(as_of=date(1, 1, 1))
@example(as_of=date(9999, 12, 31))
def test_chart_and_summary_as_of_never_5xx(any_feed: Feed, as_of: date) -> None:
    for path in ("/patients/P000/chart.png", "/patients/P000"):
        r = any_feed.client.get(path, params={"as_of": as_of.isoformat()}, headers=any_feed.auth("admin"))
        _no_5xx(r, {200, 400})
        assert (r.status_code == 400) == (not date(1900, 1, 1) <= as_of <= date(2200, 12, 31)), (path, as_of)


@EXAMPLES
@given(text=url_text)
@example(text="a\x00b")
def test_ids_and_filters_never_5xx(any_feed: Feed, text: str) -> None:
    h = any_feed.auth("admin")
    c = any_feed.client
    for r in (c.get("/alerts", params={"patient": text}, headers=h),
              c.get("/fhir/Flag", params={"patient": text}, headers=h),
              c.get("/fhir/Flag/" + quote(text, safe=""), headers=h),
              c.get("/patients/" + quote(text, safe=""), headers=h)):
        _no_5xx(r)


def test_nul_in_a_patient_id_is_refused_with_a_reason(any_feed: Feed) -> None:
    r = any_feed.client.get("/alerts", params={"patient": "P\x00"}, headers=any_feed.auth("admin"))
    assert r.status_code == 422 and "NUL" in r.text


def _json(client: TestClient, path: str, doc: Any, headers: dict[str, str]) -> Any:
    # json.dumps escapes lone surrogates (\ud800), as a hostile client would send them
    return client.post(path, content=json.dumps(doc), headers={**headers, "Content-Type": "application/json"})


@EXAMPLES
@given(until=any_datetime.map(datetime.isoformat), text=st.text(max_size=30))
@example(until="9999-12-31T23:00:00-05:00", text="a\ud800b")
@example(until="0001-01-01T00:00:00+05:00", text="a\x00b")
def test_alert_action_bodies_never_5xx(any_feed: Feed, until: str, text: str) -> None:
    h = any_feed.auth("admin")
    alert = any_feed.client.get("/alerts", params={"limit": 1}, headers=h).json()["items"][0]["id"]
    _no_5xx(_json(any_feed.client, f"/alerts/{alert}/snooze", {"until": until, "comment": text or None}, h))
    _no_5xx(_json(any_feed.client, f"/alerts/{alert}/comment", {"text": text}, h))
    _no_5xx(_json(any_feed.client, f"/alerts/{alert}/assign", {"assignee": text}, h))
    _no_5xx(_json(any_feed.client, f"/alerts/{alert}/acknowledge", {"comment": text or None}, h))


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(name=st.text(max_size=30), patient=st.text(max_size=10))
@example(name="x\ud800", patient="P1")
@example(name="hook", patient="a\x00")
def test_webhook_bodies_never_5xx(any_feed: Feed, name: str, patient: str) -> None:
    r = _json(any_feed.client, "/webhooks", {"name": name, "url": "https://93.184.215.14/hook",
                                             "filters": {"patients": [patient]}}, any_feed.auth("admin"))
    _no_5xx(r, {201, 422})
    if r.status_code == 201:
        any_feed.client.delete(f"/webhooks/{r.json()['id']}", headers=any_feed.auth("admin"))


def test_snooze_until_is_stored_in_utc(any_feed: Feed) -> None:
    h = any_feed.auth("admin")
    alert = any_feed.client.get("/alerts", params={"limit": 1, "status": "open"}, headers=h).json()["items"][0]["id"]
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    r = _json(any_feed.client, f"/alerts/{alert}/snooze", {"until": until.astimezone(timezone(timedelta(hours=-5)))
                                                            .isoformat()}, h)
    assert r.status_code == 200 and datetime.fromisoformat(r.json()["snoozed_until"]) == until
