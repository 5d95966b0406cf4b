"""API keys of the HTTP feed: bearer tokens with a role, stored hashed.

A key is `imn_` + 43 URL-safe characters from `secrets` (256 bits), so a plain SHA-256 is enough to
store it (no slow KDF is needed for a random token of that entropy). Only the hash and a short prefix
(to tell keys apart in listings) are kept; the key itself is returned once by `create_key`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
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
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = s.execute(select(_keys).where(_keys.c.key_hash == hash_token(token),
                                        _keys.c.revoked_at.is_(None))).one_or_none()
    return _key(row) if row is not None else None


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
    s.execute(update(_keys).where(_keys.c.id == found.id).values(revoked_at=when))
    user_sessions.revoke_for_key(s, found.id, when)  # the page's sessions opened with it end too
    return ApiKey(found.id, found.name, found.role, found.prefix, found.created_at, when)


def list_keys(s: Session, include_revoked: bool = True) -> list[ApiKey]:
    q = select(_keys).order_by(_keys.c.id)
    if not include_revoked:
        q = q.where(_keys.c.revoked_at.is_(None))
    return [_key(r) for r in s.execute(q)]
