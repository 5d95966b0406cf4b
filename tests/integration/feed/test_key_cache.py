"""The feed keeps keys it found valid for a short time (feed.auth.KEY_CACHE_S, storage.api_keys.KeyCache):
repeated requests do not look their key up, a key revoked through this process stops at once, and one
revoked elsewhere (another API process, the CLI: here a direct UPDATE) stops within the cache's time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from feed import auth, create_app
from storage import api_keys
from storage.db import session, upgrade
from tasks import runtime
from tasks.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[runtime.Runtime, TestClient, Clock, list[str]]]:
    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'keys.db'}", broker_url=None, _env_file=None))
    upgrade(rt.engine)
    app = create_app(rt)
    clock = Clock()
    app.state.key_cache = api_keys.KeyCache(auth.KEY_CACHE_S, clock=clock)
    looked_up: list[str] = []
    real = api_keys.authenticate

    def counting(s, token):  # type: ignore[no-untyped-def]
        looked_up.append(token[:12])
        return real(s, token)

    api_keys.authenticate = counting  # type: ignore[assignment]
    try:
        with TestClient(app) as client:
            yield rt, client, clock, looked_up
    finally:
        api_keys.authenticate = real  # type: ignore[assignment]
        runtime.reset()


def _key(rt: runtime.Runtime, role: str = "clinician") -> tuple[str, dict[str, str]]:
    with session(rt.engine) as s:
        token, key = api_keys.create_key(s, f"{role}-cache", role)
    return key.prefix, {"Authorization": f"Bearer {token}"}


def test_a_valid_key_is_looked_up_once_per_cache_period(setup) -> None:  # type: ignore[no-untyped-def]
    rt, client, clock, looked_up = setup
    prefix, h = _key(rt)
    for _ in range(5):
        assert client.get("/alerts", headers=h).status_code == 200
    assert looked_up == [prefix]
    clock.now += auth.KEY_CACHE_S + 0.01
    assert client.get("/alerts", headers=h).status_code == 200
    assert looked_up == [prefix, prefix]


def test_roles_are_still_checked_on_a_cached_key(setup) -> None:  # type: ignore[no-untyped-def]
    rt, client, _, _ = setup
    _, h = _key(rt, "ingest")
    assert client.get("/inbox/1", headers=h).status_code in (200, 404)  # cached now
    r = client.get("/alerts", headers=h)
    assert r.status_code == 403 and r.json() == {"detail": "forbidden for role ingest"}


def test_a_key_revoked_through_this_process_stops_at_once(setup) -> None:  # type: ignore[no-untyped-def]
    rt, client, _, _ = setup
    prefix, h = _key(rt)
    assert client.get("/alerts", headers=h).status_code == 200  # cached
    with session(rt.engine) as s:
        api_keys.revoke(s, prefix)
    r = client.get("/alerts", headers=h)  # no clock change: the revocation voided the cache
    assert r.status_code == 401 and r.headers["www-authenticate"].endswith('error="invalid_token"')


def test_a_key_revoked_elsewhere_stops_within_the_cache_period(setup) -> None:  # type: ignore[no-untyped-def]
    rt, client, clock, _ = setup
    prefix, h = _key(rt)
    assert client.get("/alerts", headers=h).status_code == 200  # cached
    with rt.engine.begin() as c:  # what another process's revoke writes; this process is not told
        c.execute(text("update api_keys set revoked_at = :t where prefix = :p"), {"t": datetime.now(UTC), "p": prefix})
    clock.now += auth.KEY_CACHE_S - 0.5
    assert client.get("/alerts", headers=h).status_code == 200  # the documented window
    clock.now += 0.51
    assert client.get("/alerts", headers=h).status_code == 401


def test_unknown_keys_are_never_cached(setup) -> None:  # type: ignore[no-untyped-def]
    _, client, _, looked_up = setup
    bad = {"Authorization": "Bearer imn_" + "x" * 43}
    for _ in range(3):
        assert client.get("/alerts", headers=bad).status_code == 401
    assert len(looked_up) == 3
    assert client.get("/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert len(looked_up) == 3  # not even plausible: no lookup
