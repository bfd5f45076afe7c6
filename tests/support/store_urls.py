"""Fresh, empty decision stores for tests: a SQLite file, or a PostgreSQL schema of its own per use.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth, database ``test``), or
the one ``FAIRPATH_TEST_POSTGRES`` names. Each use gets a uniquely named schema,
selected through the URL's ``search_path`` and dropped afterwards, so runs never
see each other's records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

POSTGRES_BASE = os.environ.get("FAIRPATH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema_url(base: str = POSTGRES_BASE) -> Iterator[str]:
    """Yield a store URL whose tables go in a new schema of ``base``'s database; drop the schema after."""
    schema = f"fairpath_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def store_url(kind: str, directory: Path) -> Iterator[str]:
    """Yield the URL of a new empty store of ``kind`` (``"sqlite"`` in ``directory``, or ``"postgresql"``)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'decisions-{uuid.uuid4().hex[:8]}.sqlite3'}"
    elif kind == "postgresql":
        with postgres_schema_url() as url:
            yield url
    else:
        raise ValueError(f"unknown store kind {kind!r}")
