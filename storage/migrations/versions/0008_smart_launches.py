"""Pending SMART App Launches (issue 16): the PKCE verifier and state of a launch stay on the server
between the redirect to the EHR and the callback; user_sessions.auth_method may now be "smart".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Types are spelled out here (not imported from storage.models), as in 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "smart_launches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("iss", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("redirect_uri", sa.String(500), nullable=False),
        sa.Column("token_endpoint", sa.String(500), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=True),
        sa.Column("jwks_uri", sa.String(500), nullable=True),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
    )
    op.create_index("ix_smart_launches_expires_at", "smart_launches", ["expires_at"])


def downgrade() -> None:
    op.drop_table("smart_launches")
