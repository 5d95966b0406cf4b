"""Pending SMART App Launches (table `smart_launches`, feed/smart.py).

Between the redirect to the EHR's authorization endpoint and the callback, what the callback needs
(the PKCE code verifier, the token endpoint, the client id, the redirect URI, where the id_token's keys
are) stays here, not in the browser. The record is found by the SHA-256 of the `state` parameter (a
copy of the table cannot be matched to a callback URL), is consumed at most once (`used_at`, set
compare-and-set, so two concurrent callbacks with the same state cannot both win) and expires.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from storage.models import SmartLaunchRow

PURGE_AFTER = timedelta(hours=1)  # finished or expired launches are kept this long, then deleted

_launches = SmartLaunchRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PendingLaunch:
    iss: str
    client_id: str
    code_verifier: str
    redirect_uri: str
    token_endpoint: str
    issuer: str | None
    jwks_uri: str | None
    browser_hash: str


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def create(s: Session, *, state: str, browser: str, launch: PendingLaunch | dict[str, Any], now: datetime,
           ttl: timedelta) -> None:
    """Store a launch under `state` (hashed), bound to the browser value (hashed). Old rows go on the way."""
    values = dict(launch.__dict__) if isinstance(launch, PendingLaunch) else dict(launch)
    values["browser_hash"] = digest(browser)
    purge(s, now)
    s.execute(insert(_launches).values(state_hash=digest(state), created_at=now, expires_at=now + ttl,
                                       used_at=None, **values))


class LaunchNotFound(LookupError):
    """No usable launch for this state; `reason` says which of: unknown, used, expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def consume(s: Session, state: str, now: datetime) -> PendingLaunch:
    """The launch of this state, marked used (once: a second call raises LaunchNotFound("used"))."""
    c = _launches.c
    h = digest(state)
    won = s.execute(update(_launches).where(c.state_hash == h, c.used_at.is_(None), c.expires_at > now)
                    .values(used_at=now)).rowcount
    row = s.execute(select(_launches).where(c.state_hash == h)).one_or_none()
    if row is None:
        raise LaunchNotFound("unknown")
    if not won:
        raise LaunchNotFound("used" if row.used_at is not None else "expired")
    m = row._mapping
    return PendingLaunch(m["iss"], m["client_id"], m["code_verifier"], m["redirect_uri"], m["token_endpoint"],
                         m["issuer"], m["jwks_uri"], m["browser_hash"])


def purge(s: Session, now: datetime) -> int:
    """Delete launches that expired or were used more than PURGE_AFTER ago."""
    cutoff = now - PURGE_AFTER
    c = _launches.c
    return s.execute(delete(_launches).where(or_(c.expires_at < cutoff, c.used_at < cutoff))).rowcount or 0
