"""Ended sessions of the clinician page are purged by the scheduler's sweep (`jobs.sweep_once`), a day
after they ended: logged out, past their absolute expiry, or idle past the timeout. They were only
purged when someone logged in (and an idle-ended session not before its absolute expiry), so a quiet
system kept them for good. Open sessions, and sessions ended less than a day ago, stay."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage import api_keys, user_sessions
from storage.db import session
from storage.models import UserSessionRow
from tasks import jobs
from tasks.runtime import Runtime
from tasks.settings import Settings

pytestmark = pytest.mark.integration

IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)


def test_the_sweep_purges_sessions_that_ended_a_day_ago(engine: Engine) -> None:
    now = datetime.now(UTC)  # the sweep reads the clock: sessions are placed relative to it
    with session(engine) as s:
        _, key = api_keys.create_key(s, f"purge-{secrets.token_hex(4)}", "clinician", now - timedelta(days=5))

    tokens: dict[int, str] = {}

    def opened(ago: timedelta, last_seen: timedelta | None = None, revoked: timedelta | None = None) -> int:
        with session(engine) as s:
            token, sess = user_sessions.open_session(s, actor=key.name, role="clinician", auth_method="api_key",
                                                     now=now - ago, max_age=MAX_AGE, api_key_id=key.id)
            if last_seen is not None:
                user_sessions.touch(s, sess.id, now - last_seen)
            if revoked is not None:
                user_sessions.revoke_session(s, sess.id, now - revoked)
        tokens[sess.id] = token
        return sess.id

    # opened latest first: opening a session purges what ended a day before it, so an earlier opening
    # time cannot take away the sessions this test sweeps
    active = opened(timedelta(minutes=10), last_seen=timedelta(minutes=1))
    idle_recently = opened(timedelta(hours=3), last_seen=timedelta(hours=2))  # ended 1.5 h ago: kept
    logged_out_recently = opened(timedelta(hours=5), revoked=timedelta(hours=4))  # kept
    idle_ended = opened(timedelta(hours=26), last_seen=timedelta(hours=25, minutes=30))  # ended 25 h ago
    expired = opened(timedelta(hours=40), last_seen=timedelta(hours=30))  # expired 28 h ago (12 h max age)
    logged_out = opened(timedelta(days=3), revoked=timedelta(days=2))

    def present() -> set[int]:
        with session(engine, write=False) as s:
            return set(s.execute(select(UserSessionRow.id).where(UserSessionRow.api_key_id == key.id)).scalars())

    assert present() == {logged_out, idle_ended, expired, idle_recently, logged_out_recently, active}
    rt = Runtime(Settings(broker_url=None, session_idle_timeout_s=int(IDLE.total_seconds()), _env_file=None),
                 engine)
    counts = jobs.sweep_once(rt)
    assert counts["sessions_purged"] == 3
    assert present() == {idle_recently, logged_out_recently, active}
    with session(engine, write=False) as s:  # the open one still works
        found = user_sessions.find_session(s, tokens[active], now, IDLE)
        assert found is not None and found.id == active
    assert jobs.sweep_once(rt)["sessions_purged"] == 0
