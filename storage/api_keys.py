"""API keys of the HTTP feed: bearer tokens with a role, stored hashed.

A key is `imn_` + 43 URL-safe characters from `secrets` (256 bits), so a plain SHA-256 is enough to
store it (no slow KDF is needed for a random token of that entropy). Only the hash and a short prefix
(to tell keys apart in listings) are kept; the key itself is returned once by `create_key`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session

from storage import user_sessions
from storage.models import API_KEY_ROLES, ApiKeyRow
from storage.serialize import iso

ROLES = API_KEY_ROLES
TOKEN_PREFIX = "imn_"
PREFIX_LEN = 12  # "imn_" + 8 characters of the token: shown in listings, never enough to use
NAME_MAX = 200
_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]


class ApiKeyError(ValueError):
    """A key that cannot be created or revoked as asked (the message says why)."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "prefix": self.prefix,
                "created_at": iso(self.created_at), "revoked_at": iso(self.revoked_at)}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(row: Any) -> ApiKey:
    m = row._mapping
    return ApiKey(m["id"], m["name"], m["role"], m["prefix"], m["created_at"], m["revoked_at"])


def create_key(s: Session, name: str, role: str, now: datetime | None = None) -> tuple[str, ApiKey]:
    """A new key: (the plaintext token, shown once; its stored row)."""
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("a key needs a name (who or what uses it; it is written to the audit trail)")
    if len(name) > NAME_MAX:
        raise ApiKeyError(f"a key name is at most {NAME_MAX} characters")
    if role not in ROLES:
        raise ApiKeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    values = {"name": name, "role": role, "prefix": token[:PREFIX_LEN], "key_hash": hash_token(token),
              "created_at": now or datetime.now(UTC), "revoked_at": None}
    new_id = s.execute(insert(_keys).values(**values).returning(_keys.c.id)).scalar_one()
    return token, ApiKey(new_id, values["name"], role, values["prefix"], values["created_at"])


def authenticate(s: Session, token: str | None) -> ApiKey | None:
    """The active key whose token this is; None for an unknown, malformed or revoked one."""
    if not _plausible(token):
        return None
    assert token is not None
    row = s.execute(select(_keys).where(_keys.c.key_hash == hash_token(token),
                                        _keys.c.revoked_at.is_(None))).one_or_none()
    return _key(row) if row is not None else None


class KeyCache:
    """Keys recently found valid, by token hash, kept for `ttl` seconds (one per API process).

    Without it every request opened a session of its own (a pooled connection, its liveness ping,
    BEGIN, the query, COMMIT) just to look its key up: an empty session alone took ~1.1 ms of CPU on
    the benchmark machine (docs/performance.md section 3).

    What that costs: a key revoked by another process (the CLI, another API worker) keeps working in
    this process for at most `ttl` seconds; a key revoked through this process (`revoke` below) stops
    at once, in every cache of the process. Only valid keys are kept (an unknown or revoked token is
    looked up every time), at most `max_size` of them.
    """

    def __init__(self, ttl: float = 2.0, max_size: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_size, self.clock = ttl, max_size, clock
        self._keys: dict[str, tuple[ApiKey, float, int]] = {}  # hash -> (key, valid until, generation)
        self._lock = threading.Lock()

    def cached(self, token: str | None) -> ApiKey | None:
        """The key of this token if the cache holds it, fresh; None otherwise (look it up)."""
        if not _plausible(token):
            return None
        hit = self._keys.get(hash_token(token))  # type: ignore[arg-type]
        if hit is not None and hit[1] > self.clock() and hit[2] == _generation:
            return hit[0]
        return None

    def authenticate(self, lookup: Callable[[str], ApiKey | None], token: str | None) -> ApiKey | None:
        """The key of this token: from the cache while fresh, else `lookup(token)` (a database
        lookup, e.g. `authenticate` in a session), cached when valid."""
        if not _plausible(token):
            return None
        assert token is not None
        key = self.cached(token)
        if key is not None:
            return key
        digest, now = hash_token(token), self.clock()
        if self.ttl <= 0:
            return lookup(token)
        generation = _generation  # read before the lookup: a revocation meanwhile voids this entry
        key = lookup(token)
        with self._lock:
            if key is None:
                self._keys.pop(digest, None)
            else:
                if len(self._keys) >= self.max_size:
                    self._keys.clear()
                self._keys[digest] = (key, now + self.ttl, generation)
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


# bumped by every revocation in this process: entries cached before it are not used again
_generation = 0


def _bump_generation() -> None:
    global _generation
    _generation += 1


def _plausible(token: str | None) -> bool:
    return token is not None and token.startswith(TOKEN_PREFIX) and len(token) <= 200


def revoke(s: Session, key: int | str, now: datetime | None = None) -> ApiKey:
    """Revoke a key given its id or its prefix, and end the page sessions opened with it; revoking a
    revoked key changes nothing."""
    q = select(_keys)
    if isinstance(key, int) or (isinstance(key, str) and key.isascii() and key.isdigit()):
        q = q.where(_keys.c.id == int(key))
    else:
        q = q.where(_keys.c.prefix == key)
    rows = s.execute(q).all()
    if not rows:
        raise ApiKeyError(f"no API key {key!r}")
    if len(rows) > 1:
        raise ApiKeyError(f"prefix {key!r} matches {len(rows)} keys; give the id")
    found = _key(rows[0])
    if found.revoked_at is not None:
        return found
    when = now or datetime.now(UTC)
    _bump_generation()  # this process's key caches stop trusting what they hold: now, and after the
    event.listen(s, "after_commit", lambda _s: _bump_generation(), once=True)  # commit (a lookup between)
    s.execute(update(_keys).where(_keys.c.id == found.id).values(revoked_at=when))
    user_sessions.revoke_for_key(s, found.id, when)  # the page's sessions opened with it end too
    return ApiKey(found.id, found.name, found.role, found.prefix, found.created_at, when)


def list_keys(s: Session, include_revoked: bool = True) -> list[ApiKey]:
    q = select(_keys).order_by(_keys.c.id)
    if not include_revoked:
        q = q.where(_keys.c.revoked_at.is_(None))
    return [_key(r) for r in s.execute(q)]
