"""Engines, sessions and schema migrations.

SQLite (the embedded default) and PostgreSQL (production) behave alike from the repository's point of
view: timestamps are timezone-aware, foreign keys are enforced, and several processes may write.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

log = logging.getLogger("imn.storage")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# an arbitrary constant: every imn-monitor process that migrates takes this PostgreSQL advisory lock
MIGRATION_LOCK_KEY = 0x1A11_0E11
READ_ONLY_OPTION = "imn_read_only"
SQLITE_BUSY_TIMEOUT_S = 30
# alembic's `context` and `op` are module-global proxies: one migration at a time per process
_UPGRADE_LOCK = threading.Lock()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite file or a PostgreSQL (psycopg 3) URL."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    for plain in ("postgresql://", "postgres://"):  # the URL spellings libpq users have at hand
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url.removeprefix(plain)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared by processes; use a file")
    # pooled: closing the last connection of a WAL database checkpoints and removes the WAL file,
    # which made every short session pay for a checkpoint (forked children dispose their copy)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
    # we emit BEGIN ourselves (below): the driver's implicit transactions would defeat BEGIN IMMEDIATE
    connect_args.setdefault("isolation_level", None)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        _ensure_wal(cur)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; durable at checkpoint
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock up front and waits (busy_timeout) for it. A deferred
        # transaction that reads and then writes fails at once with SQLITE_BUSY when another process
        # committed in between: the busy handler is not consulted for that upgrade. Read-only
        # sessions (session(engine, write=False)) begin deferred and never wait for writers (WAL).
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _ensure_wal(cur: Any) -> None:
    """WAL lets readers and the writer proceed together; it is a property of the file, so only the
    first connection to a new database switches it. That switch needs an exclusive lock and answers
    "locked" at once instead of waiting on busy_timeout, hence the retry loop."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


@contextmanager
def session(engine: Engine, write: bool = True) -> Iterator[Session]:
    """A unit of work: commits when the block succeeds, rolls back when it raises.

    On SQLite a writing session holds the database's write lock from its start (BEGIN IMMEDIATE), so
    keep it short and do not open a second writing session inside it in the same thread (it would
    wait for the first). `write=False` is for reads (views): it never waits for writers."""
    s = Session(engine, expire_on_commit=False)
    try:
        if not write:
            s.connection(execution_options={READ_ONLY_OPTION: True})
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the schema to `revision` (head). Idempotent; concurrent callers on PostgreSQL queue on
    an advisory lock, so two processes starting together do not both create the tables."""
    from alembic import command

    owned = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with _UPGRADE_LOCK, engine.connect() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
            try:
                command.upgrade(alembic_config(conn), revision)
                conn.commit()
            finally:
                if postgres:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                    conn.commit()
    finally:
        if owned:
            engine.dispose()


def alembic_config(conn: Connection | None = None, url: str | None = None) -> Any:
    """Alembic's configuration built in code (no alembic.ini to locate at run time)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class SchemaNotCurrent(RuntimeError):
    """The database's schema is missing or older than this version's migrations."""


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations"
    return head


def check_schema(engine: Engine) -> None:
    """Raise SchemaNotCurrent, saying what to do, unless the schema is at head. Never migrates and never
    creates anything (not even an empty SQLite file): for commands that only read."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise SchemaNotCurrent(f"no database at {url.database}: nothing stored yet (run `imn-monitor db upgrade` "
                               "to create it, or ingest data)")
    current, head = current_revision(engine), head_revision()
    if current is None:
        raise SchemaNotCurrent("the database has no imn-monitor schema yet: run `imn-monitor db upgrade` "
                               "(or ingest data)")
    if current != head:
        raise SchemaNotCurrent(f"the database schema is at revision {current}, this version needs {head}: "
                               "run `imn-monitor db upgrade` (commands that only read do not migrate)")
