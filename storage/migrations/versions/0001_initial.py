"""Initial schema: patients, inbox, events, quarantine, alerts, alert_audit, outbox, nightly_runs.

Revision ID: 0001
Revises:
Create Date: 2025-11-26

Types are spelled out here (not imported from storage.models) so that this revision keeps meaning
what it meant when later revisions change the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _pk() -> sa.Column:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("first_seen_at", nullable=False),
        _ts("last_event_at"),
        _ts("dirty_since"),
        _ts("last_assessed_at"),
        sa.Column("last_as_of", sa.Date()),
        sa.Column("remission_state", sa.String(40)),
        sa.Column("risk_category", sa.String(40)),
        sa.Column("summary", Json),
    )
    op.create_index("ix_patients_dirty_since", "patients", ["dirty_since"])

    op.create_table(
        "inbox",
        _pk(),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("source_name", sa.String(500), nullable=False),
        _ts("received_at", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("processed_at"),
        sa.Column("counts", Json),
        sa.Column("error", sa.String()),
        sa.Column("line_offset", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_inbox_state_received_at", "inbox", ["state", "received_at"])

    op.create_table(
        "events",
        _pk(),
        sa.Column("identity", sa.String(300), nullable=False),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("payload", Json, nullable=False),
        _ts("effective_at"),
        _ts("recorded_at"),
        _ts("received_at", nullable=False),
        sa.Column("inbox_id", BigId, sa.ForeignKey("inbox.id")),
        sa.UniqueConstraint("identity", "content_hash", name="uq_events_identity_content_hash"),
    )
    op.create_index("ix_events_patient_current", "events", ["patient_id", "is_current"])

    op.create_table(
        "quarantine",
        _pk(),
        sa.Column("inbox_id", BigId, sa.ForeignKey("inbox.id")),
        sa.Column("line", sa.Integer()),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("raw", sa.String(), nullable=False),
        _ts("created_at", nullable=False),
    )
    op.create_index("ix_quarantine_inbox_id", "quarantine", ["inbox_id"])

    op.create_table(
        "alerts",
        _pk(),
        sa.Column("fingerprint", sa.String(300), nullable=False, unique=True),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.patient_id"), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("episode", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        _ts("raised_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("resolved_at"),
        sa.Column("resolution", sa.String(16)),
        sa.Column("resolved_reason", sa.String()),
        _ts("snoozed_until"),
        sa.Column("assigned_to", sa.String(200)),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("severity_at_resolution", sa.String(16)),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index("ix_alerts_patient_status", "alerts", ["patient_id", "status"])
    op.create_index("ix_alerts_rule", "alerts", ["rule"])

    op.create_table(
        "alert_audit",
        _pk(),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id"), nullable=False),
        _ts("at", nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("severity", sa.String(16)),
        sa.Column("comment", sa.String()),
        sa.Column("details", Json),
    )
    op.create_index("ix_alert_audit_alert_id", "alert_audit", ["alert_id"])
    _append_only("alert_audit")

    op.create_table(
        "outbox",
        _pk(),
        sa.Column("alert_id", BigId, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("last_error", sa.String()),
        _ts("created_at", nullable=False),
        _ts("delivered_at"),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_alert_id", "outbox", ["alert_id"])

    op.create_table(
        "nightly_runs",
        sa.Column("as_of", sa.Date(), primary_key=True),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("patients", sa.Integer()),
    )


def _append_only(table: str) -> None:
    """The audit trail is evidence: reject UPDATE and DELETE in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"""
        )
        op.execute(
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"""
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
            )


def downgrade() -> None:
    for table in ("nightly_runs", "outbox", "alert_audit", "alerts", "quarantine", "events", "inbox",
                  "patients"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS alert_audit_append_only()")
