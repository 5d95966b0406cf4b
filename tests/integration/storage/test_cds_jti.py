"""CDS Hooks JWT ids (storage/cds_jti.py) on SQLite and PostgreSQL: each (issuer, jti) once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from storage import cds_jti
from storage.db import session
from storage.models import CdsJtiRow

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_a_jti_is_accepted_once_per_issuer_and_forgotten_after_expiry(engine) -> None:  # type: ignore[no-untyped-def]
    iss, other = f"https://ehr-{secrets.token_hex(4)}.example.org", f"https://x-{secrets.token_hex(4)}.example.org"
    exp = NOW + timedelta(minutes=5)
    with session(engine) as s:
        assert cds_jti.remember(s, iss, "j1", exp, NOW)
    with session(engine) as s:
        assert not cds_jti.remember(s, iss, "j1", exp, NOW + timedelta(seconds=1))  # a replay
        assert cds_jti.remember(s, other, "j1", exp, NOW)  # another issuer's token
    later = exp + timedelta(seconds=1)
    with session(engine) as s:
        assert cds_jti.remember(s, iss, "j2", later + timedelta(minutes=5), later)  # purges the expired rows
        left = s.execute(select(func.count()).select_from(CdsJtiRow).where(
            CdsJtiRow.issuer.in_([iss, other]))).scalar_one()  # type: ignore[attr-defined]
    assert left == 1
