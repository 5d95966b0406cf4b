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
