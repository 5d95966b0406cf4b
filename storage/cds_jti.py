"""JWT ids of accepted CDS Hooks requests (table `cds_jti`): each (issuer, jti) is accepted once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage._sql import upsert
from storage.models import CdsJtiRow

_jti = CdsJtiRow.__table__  # type: ignore[attr-defined]


def remember(s: Session, issuer: str, jti: str, expires_at: datetime, now: datetime) -> bool:
    """Record the jti; False when the same issuer's jti was seen before (a replay). Expired rows are
    purged first: a token past its exp is refused by the signature check anyway, so its jti need not
    be remembered, and the table stays as small as the tokens alive at once."""
    s.execute(delete(_jti).where(_jti.c.expires_at < now))
    stmt = (upsert(s, _jti).values(issuer=issuer, jti=jti, expires_at=expires_at, seen_at=now)
            .on_conflict_do_nothing(index_elements=["issuer", "jti"]).returning(_jti.c.id))
    # a row comes back only when it was inserted (rowcount is -1 on PostgreSQL with RETURNING)
    return s.execute(stmt).first() is not None
