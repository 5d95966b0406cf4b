"""Alert inhibition, snooze expiry by time, and notifications grouped per patient.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- alerts.inhibited_by (the id of the open alert muting this one) and alerts.inhibited_by_fingerprint
  (monitor/inhibitions.py); an index on alerts.snoozed_until, by which the sweep finds expired snoozes.
- outbox: one row is now one patient's alert group (kind "alert_group", monitor/notifications.py):
  outbox.patient_id (NOT NULL) and outbox.alert_id nullable. The rows written before (one per alert
  change, payload = the alert) are rewritten as groups of one change, so pending ones are delivered
  in the new shape and every row reads alike.

SQLite cannot change a column's nullability in place: the outbox table is rebuilt (alembic batch
mode). Foreign keys are enforced there (PRAGMA foreign_keys=ON, which cannot be switched off inside
the migration's transaction), and dropping the old outbox would fail while webhook_deliveries rows
point to it; they are set aside in a temporary table and put back after the rebuild, in the same
transaction. Types are spelled out here (not imported from storage.models), as in 0001.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STASH = "_imn_0005_webhook_deliveries"

# old row (kind = the change, payload = the alert) -> a group of one change (cause: reassessment, the
# only source of notifications before grouping)
_TO_GROUP = {
    "postgresql": """
        UPDATE outbox SET
          patient_id = payload->>'patient_id',
          payload = jsonb_build_object(
            'kind', 'alert_group', 'version', 1, 'group', 'patient:' || (payload->>'patient_id'),
            'patient_id', payload->>'patient_id', 'cause', 'reassessment', 'as_of', payload->'as_of',
            'at', payload->'updated_at',
            'changes', jsonb_build_array(jsonb_build_object(
              'change', kind,
              'alert', payload || jsonb_build_object('inhibited_by', NULL,
                                                     'group', 'patient:' || (payload->>'patient_id'))))),
          kind = 'alert_group'
        WHERE kind <> 'alert_group'""",
    "sqlite": """
        UPDATE outbox SET
          patient_id = json_extract(payload, '$.patient_id'),
          payload = json_object(
            'kind', 'alert_group', 'version', 1, 'group', 'patient:' || json_extract(payload, '$.patient_id'),
            'patient_id', json_extract(payload, '$.patient_id'), 'cause', 'reassessment',
            'as_of', json_extract(payload, '$.as_of'), 'at', json_extract(payload, '$.updated_at'),
            'changes', json_array(json_object(
              'change', kind,
              'alert', json_set(payload, '$.inhibited_by', json('null'),
                                '$.group', 'patient:' || json_extract(payload, '$.patient_id'))))),
          kind = 'alert_group'
        WHERE kind <> 'alert_group'""",
}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _rebuild_outbox(nullable_alert_id: bool, patient_id: bool) -> None:
    sqlite = _sqlite()
    if sqlite:
        op.execute(f"CREATE TEMP TABLE {_STASH} AS SELECT * FROM webhook_deliveries")
        op.execute("DELETE FROM webhook_deliveries")
    with op.batch_alter_table("outbox") as b:
        b.alter_column("alert_id", existing_type=BigId, nullable=nullable_alert_id)
        if patient_id:
            b.alter_column("patient_id", existing_type=sa.String(64), nullable=False)
        else:
            b.drop_column("patient_id")
    if sqlite:
        op.execute(f"INSERT INTO webhook_deliveries SELECT * FROM {_STASH}")
        op.execute(f"DROP TABLE {_STASH}")


def upgrade() -> None:
    op.add_column("alerts", sa.Column("inhibited_by", BigId))
    op.add_column("alerts", sa.Column("inhibited_by_fingerprint", sa.String(300)))
    op.create_index("ix_alerts_snoozed_until", "alerts", ["snoozed_until"])

    op.add_column("outbox", sa.Column("patient_id", sa.String(64)))
    op.execute(_TO_GROUP[op.get_bind().dialect.name])
    _rebuild_outbox(nullable_alert_id=True, patient_id=True)


def downgrade() -> None:
    """Groups back to one row per alert change. A group of several changes keeps its first: the
    schema before 0005 has no way to hold the others (they remain in the alert audit trail)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, payload FROM outbox WHERE kind = 'alert_group'")).all()
    for row_id, payload in rows:
        doc = json.loads(payload) if isinstance(payload, str) else payload
        first = doc["changes"][0]
        alert = {k: v for k, v in first["alert"].items() if k not in ("inhibited_by", "group")}
        bind.execute(sa.text("UPDATE outbox SET alert_id = :a, kind = :k, payload = :p WHERE id = :i"),
                     {"a": alert["id"], "k": first["change"], "p": json.dumps(alert), "i": row_id})
    _rebuild_outbox(nullable_alert_id=False, patient_id=False)

    op.drop_index("ix_alerts_snoozed_until", table_name="alerts")
    for column in ("inhibited_by_fingerprint", "inhibited_by"):
        if _sqlite():
            # native DROP COLUMN (SQLite >= 3.35): a batch rebuild of alerts would have to drop the
            # table the append-only audit trail points to
            op.execute(f"ALTER TABLE alerts DROP COLUMN {column}")
        else:
            op.drop_column("alerts", column)
