"""Server-side sessions of the clinician page (table `user_sessions`).

The browser's cookie holds a random 256-bit token; only its SHA-256 is stored, as for API keys. A
session carries its own actor, role and optional patient context, so something other than an API key
(a SMART on FHIR EHR launch, issue 16) can open the same kind of session; one opened with a key names
it (`api_key_id`) and ends when the key is revoked.

A session is valid while all of these hold: not revoked (log out, key revoked), `now < expires_at`
(the absolute lifetime, fixed at opening) and `now < last_seen_at + idle_timeout`. `touch` moves
`last_seen_at`; callers throttle it (TOUCH_EVERY) so that reading pages does not write on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from storage.models import SESSION_AUTH_METHODS, ApiKeyRow, UserSessionRow

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is at most this stale: the idle timeout's resolution
PURGE_AFTER = timedelta(days=1)  # ended sessions are kept this long (who was signed in, when)

_sessions = UserSessionRow.__table__  # type: ignore[attr-defined]
_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UserSession:
    id: int
    actor: str
    role: str
    auth_method: str
    api_key_id: int | None
    patient_id: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _session(m: Any) -> UserSession:
    return UserSession(m["id"], m["actor"], m["role"], m["auth_method"], m["api_key_id"], m["patient_id"],
                       m["created_at"], m["last_seen_at"], m["expires_at"])


def open_session(s: Session, *, actor: str, role: str, auth_method: str, now: datetime, max_age: timedelta,
                 api_key_id: int | None = None, patient_id: str | None = None) -> tuple[str, UserSession]:
    """A new session: (the token for the cookie, shown once; the session). Ended sessions older than
    PURGE_AFTER are removed on the way, so the table stays small without a job of its own."""
    if auth_method not in SESSION_AUTH_METHODS:
        raise ValueError(f"unknown authentication method {auth_method!r}")
    if auth_method == "api_key" and api_key_id is None:
        raise ValueError("a session opened with an API key names the key")
    purge_ended(s, now)
    token = secrets.token_urlsafe(32)
    values = {"token_hash": hash_token(token), "actor": actor, "role": role, "auth_method": auth_method,
              "api_key_id": api_key_id, "patient_id": patient_id, "created_at": now, "last_seen_at": now,
              "expires_at": now + max_age, "revoked_at": None}
    new_id = s.execute(insert(_sessions).values(**values).returning(_sessions.c.id)).scalar_one()
    return token, _session({**values, "id": new_id})


def find_session(s: Session, token: str | None, now: datetime, idle_timeout: timedelta) -> UserSession | None:
    """The valid session of this token; None when it is unknown, ended, idle too long, or its API key
    was revoked."""
    if not token or len(token) > 200:
        return None
    c = _sessions.c
    q = (select(_sessions).select_from(_sessions.outerjoin(_keys, _keys.c.id == c.api_key_id))
         .where(c.token_hash == hash_token(token), c.revoked_at.is_(None), c.expires_at > now,
                c.last_seen_at > now - idle_timeout,
                or_(c.api_key_id.is_(None), and_(_keys.c.id.is_not(None), _keys.c.revoked_at.is_(None)))))
    row = s.execute(q).one_or_none()
    return _session(row._mapping) if row is not None else None


def touch(s: Session, session_id: int, now: datetime) -> None:
    s.execute(update(_sessions).where(_sessions.c.id == session_id, _sessions.c.last_seen_at < now)
              .values(last_seen_at=now))


def revoke_session(s: Session, session_id: int, now: datetime) -> None:
    s.execute(update(_sessions).where(_sessions.c.id == session_id, _sessions.c.revoked_at.is_(None))
              .values(revoked_at=now))


def revoke_for_key(s: Session, api_key_id: int, now: datetime) -> int:
    """End every session opened with this key; returns how many were open."""
    c = _sessions.c
    return s.execute(update(_sessions).where(c.api_key_id == api_key_id, c.revoked_at.is_(None))
                     .values(revoked_at=now)).rowcount or 0


def purge_ended(s: Session, now: datetime, idle_timeout: timedelta | None = None) -> int:
    """Delete sessions that ended more than PURGE_AFTER ago: at their absolute expiry, revoked (log
    out, key revoked), or, given the idle timeout, unused for longer than it (such a session ended
    at last_seen_at + idle_timeout, hours before its expiry). The scheduler's sweep calls it with
    the idle timeout (tasks.jobs.sweep_once); opening a session calls it too."""
    cutoff = now - PURGE_AFTER
    c = _sessions.c
    ended = [c.expires_at < cutoff, c.revoked_at < cutoff]
    if idle_timeout is not None:
        ended.append(c.last_seen_at < cutoff - idle_timeout)
    return s.execute(delete(_sessions).where(or_(*ended))).rowcount or 0
