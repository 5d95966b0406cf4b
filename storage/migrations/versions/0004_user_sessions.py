"""Server-side sessions of the clinician page (the cookie holds a random token, not the API key).

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-10

Types are spelled out here (not imported from storage.models), as in 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("auth_method", sa.String(16), nullable=False),
        sa.Column("api_key_id", BigId, sa.ForeignKey("api_keys.id"), nullable=True),
        sa.Column("patient_id", sa.String(64), nullable=True),
        _ts("created_at"),
        _ts("last_seen_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
    )
    op.create_index("ix_user_sessions_api_key_id", "user_sessions", ["api_key_id"])
    op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("user_sessions")
