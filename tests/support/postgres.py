"""The PostgreSQL server of the tests: ``make postgres`` (run by ``make test``) starts it
with scripts/test-postgres.sh and writes its URL where :func:`server_url` reads it.

A test that needs it takes the ``postgres_url`` fixture (a fresh database of its own,
dropped afterwards). Without a server the test fails under ``CI=true`` (CI runs
``make test``, which starts one: a missing server is a broken set-up) and is skipped
elsewhere, with the command that starts one.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

START = "make postgres (or scripts/test-postgres.sh)"


def url_file() -> Path:
    folder = os.environ.get("TRIMKIT_PG_DIR") or Path(tempfile.gettempdir()) / f"trimkit-postgres-{os.getuid()}"
    return Path(folder) / "url"


def server_url() -> str | None:
    """The test server's URL (``$TRIMKIT_TEST_POSTGRES``, else the file the script
    wrote) when a server answers there; otherwise None."""
    import psycopg

    url = os.environ.get("TRIMKIT_TEST_POSTGRES")
    if not url and url_file().is_file():
        url = url_file().read_text().strip()
    if not url:
        return None
    try:
        with psycopg.connect(url, connect_timeout=5):
            return url
    except psycopg.OperationalError:
        return None


def require_server() -> str:
    url = server_url()
    if url is None:
        message = f"needs a PostgreSQL server: run {START}; none answers at {url_file()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the test server, dropped after the test."""
    import psycopg

    server = require_server()
    name = f"trimkit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
