"""Due-only nightly run: patients.valid_until and nightly_runs.mode.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

- patients.valid_until (DATE, NULL = never assessed since this migration): the first day on which the
  patient's last assessment could differ without a new event (monitor.assess, Assessment.valid_until).
  Indexed with patient_id so the nightly run pages through the due patients (valid_until <= as_of)
  in index order instead of reading every patient.
- nightly_runs.mode: "due" or "full" (NULL for runs claimed before: they were full), which tells the
  sweeper which patients a run still owes.

Existing patients start with NULL: the first nightly run after the upgrade reassesses all of them
(as before) and stores their valid_until. Plain ADD COLUMN on both dialects (no table rebuild).

Numbered after 0008, not in the 0006 gap before 0007: databases already at 0007 or 0008 would take
a 0006 placed before them as applied and never get these columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("patients", sa.Column("valid_until", sa.Date()))
    op.create_index("ix_patients_valid_until", "patients", ["valid_until", "patient_id"])
    op.add_column("nightly_runs", sa.Column("mode", sa.String(8)))


def downgrade() -> None:
    op.drop_index("ix_patients_valid_until", table_name="patients")
    for table, column in (("nightly_runs", "mode"), ("patients", "valid_until")):
        if op.get_bind().dialect.name == "sqlite":
            # native DROP COLUMN (SQLite >= 3.35), as in 0005: no batch rebuild of tables others point to
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
