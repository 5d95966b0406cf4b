from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import current_revision, make_engine, session, upgrade

from .builders import T0, finding, lab
from .conftest import TABLES

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_upgrade_creates_every_table_and_is_idempotent(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op
        upgrade(fresh_url)  # and so is one given a URL
        assert set(TABLES) <= set(inspect(engine).get_table_names())
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_and_migrations_agree(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []


def test_concurrent_upgrades_from_two_processes(fresh_url: str) -> None:
    code = "import sys; from storage.db import upgrade; upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, fresh_url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    engine = make_engine(fresh_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_concurrent_upgrades_from_two_threads(fresh_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(fresh_url)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_alert_audit_is_append_only(engine) -> None:  # type: ignore[no-untyped-def]
    from storage import repository as repo

    with session(engine) as s:
        repo.store_events(s, None, [lab()], T0)
        repo.reconcile_alerts(s, "P1", [finding()], T0.date(), T0)
    with pytest.raises(Exception, match="append-only"), session(engine) as s:
        s.execute(text("UPDATE alert_audit SET actor = 'mallory'"))
    with pytest.raises(Exception, match="append-only"), session(engine) as s:
        s.execute(text("DELETE FROM alert_audit"))


def test_0005_turns_old_outbox_rows_into_groups_and_keeps_their_deliveries(fresh_url: str) -> None:
    import json

    from alembic import command

    from storage.db import alembic_config

    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0004")
        alert = {"id": 1, "patient_id": "P1", "rule": "titer_rising", "severity": "warning", "status": "firing",
                 "as_of": "2025-06-01", "updated_at": T0.isoformat()}
        with engine.begin() as c:
            c.execute(text("INSERT INTO patients (patient_id, active, first_seen_at) VALUES ('P1', true, :t)"),
                      {"t": T0})
            c.execute(text("INSERT INTO alerts (id, fingerprint, patient_id, rule, episode, severity, status, message,"
                           " evidence, reference, raised_at, updated_at, as_of, revision) VALUES (1, 'P1/titer_rising/e1',"
                           " 'P1', 'titer_rising', 'e1', 'warning', 'firing', 'm', '[]', 'r', :t, :t, '2025-06-01', 1)"),
                      {"t": T0})
            c.execute(text("INSERT INTO outbox (id, alert_id, kind, payload, dedupe_key, state, attempts, created_at)"
                           " VALUES (7, 1, 'fired', :p, '1:fired:warning:1', 'pending', 0, :t)"),
                      {"p": json.dumps(alert), "t": T0})
            c.execute(text("INSERT INTO webhook_subscriptions (id, name, url, secret, filters, active, created_at)"
                           " VALUES (3, 'w', 'http://x/h', 'sixteen-chars-secret', '{}', true, :t)"), {"t": T0})
            c.execute(text("INSERT INTO webhook_deliveries (id, subscription_id, outbox_id, state, attempts, created_at)"
                           " VALUES (5, 3, 7, 'pending', 1, :t)"), {"t": T0})
        upgrade(engine)
        with engine.connect() as c:
            kind, pid, alert_id, payload = c.execute(text("SELECT kind, patient_id, alert_id, payload FROM outbox")).one()
            deliveries = c.execute(text("SELECT id, outbox_id, attempts FROM webhook_deliveries")).all()
        payload = json.loads(payload) if isinstance(payload, str) else payload
        assert (kind, pid, alert_id) == ("alert_group", "P1", 1)
        assert payload == {"kind": "alert_group", "version": 1, "group": "patient:P1", "patient_id": "P1",
                           "cause": "reassessment", "as_of": "2025-06-01", "at": T0.isoformat(),
                           "changes": [{"change": "fired",
                                        "alert": {**alert, "inhibited_by": None, "group": "patient:P1"}}]}
        assert [tuple(d) for d in deliveries] == [(5, 7, 1)]
        # and back: one row per change again, the deliveries still in place
        with engine.connect() as conn:
            command.downgrade(alembic_config(conn), "0004")
            conn.commit()
        with engine.connect() as c:
            kind, alert_id, payload = c.execute(text("SELECT kind, alert_id, payload FROM outbox")).one()
            assert c.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar_one() == 1
        payload = json.loads(payload) if isinstance(payload, str) else payload
        assert (kind, alert_id, payload) == ("fired", 1, alert)
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0009_existing_patients_start_due_and_the_columns_go_on_downgrade(fresh_url: str) -> None:
    from datetime import date

    from alembic import command

    from storage import repository as repo
    from storage.db import alembic_config

    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0008")
        with engine.begin() as c:
            c.execute(text("INSERT INTO patients (patient_id, active, first_seen_at, last_as_of) VALUES"
                           " ('P1', true, :t, '2025-05-01')"), {"t": T0})
        upgrade(engine)
        with session(engine) as s:  # never assessed since the upgrade: the next nightly run takes it
            assert repo.due_patient_page(s, date(2025, 6, 1), repo.DUE_START, 10) == (["P1"], None)
        with engine.connect() as conn:
            command.downgrade(alembic_config(conn), "0008")
            conn.commit()
        assert "valid_until" not in {col["name"] for col in inspect(engine).get_columns("patients")}
        assert "mode" not in {col["name"] for col in inspect(engine).get_columns("nightly_runs")}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
