"""Every storage test runs against a SQLite file and the real PostgreSQL server.

PostgreSQL: one schema per test session (imn_test_<random>, via search_path in the URL), migrated
once, truncated before each test and dropped at the end, so runs do not collide with other users of
the database. Set IMN_TEST_PG_URL to point elsewhere. When the server does not answer, the
PostgreSQL variants are skipped and the reason is printed in the summary.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.db import make_engine, upgrade

PG_URL = os.environ.get("IMN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = ("patients", "inbox", "events", "quarantine", "alerts", "alert_audit", "outbox", "nightly_runs")
_pg_problem: list[str] = []


def pg_url_for(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


def _pg_error() -> str | None:
    import psycopg

    try:
        dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server to test against"
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    err = _pg_error()
    if err is not None:
        msg = f"PostgreSQL at {PG_URL} does not answer ({err}): PostgreSQL variants SKIPPED"
        if not _pg_problem:
            _pg_problem.append(msg)
            print(f"\n*** {msg}")
        pytest.skip(msg)
    engine = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_schema(pg_admin: Engine) -> Iterator[str]:
    """A fresh schema for this test session, dropped at the end."""
    with new_pg_schema(pg_admin) as schema:
        yield schema


class new_pg_schema:
    def __init__(self, admin: Engine):
        self.admin = admin
        self.name = f"imn_test_{secrets.token_hex(5)}"

    def __enter__(self) -> str:
        with self.admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{self.name}"'))
        return self.name

    def __exit__(self, *exc: object) -> None:
        with self.admin.connect() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_engine(pg_schema: str) -> Iterator[Engine]:
    engine = make_engine(pg_url_for(pg_schema))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "imn.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database of the parametrised backend."""
    if backend == "sqlite":
        path = tmp_path / "imn.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
        return
    eng = request.getfixturevalue("pg_engine")
    with eng.begin() as c:
        c.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    yield eng


@pytest.fixture
def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, unmigrated database of the parametrised backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with new_pg_schema(request.getfixturevalue("pg_admin")) as schema:
        yield pg_url_for(schema)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for msg in _pg_problem:
        terminalreporter.write_line(f"*** {msg}", yellow=True, bold=True)
