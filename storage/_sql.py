"""Small dialect helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

T = TypeVar("T")

# SQLite allows 32766 bound parameters per statement; PostgreSQL 65535. IN lists stay well below.
IN_CHUNK = 2000


def dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def is_postgres(s: Session) -> bool:
    return dialect(s) == "postgresql"


def upsert(s: Session, table: Table) -> Any:
    """The dialect's INSERT that supports ON CONFLICT (PostgreSQL and SQLite share the syntax)."""
    return (postgresql.insert if is_postgres(s) else sqlite.insert)(table)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def in_list(s: Session, column: Any, values: Sequence[Any]) -> Any:
    """`column IN (values)`; on PostgreSQL `column = ANY(:array)`: one parameter instead of thousands
    (psycopg re-parses every long query text, which dominated bulk ingest)."""
    if is_postgres(s):
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)
