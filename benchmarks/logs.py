"""Where a measurement's log lives: a fresh SQLite file, or a fresh Postgres schema.

Every repetition of every cell gets its own, created before and removed after, so that no
measurement inherits another's rows, indexes or bloat. On Postgres the schema is selected
with ``options=-csearch_path=...`` in the URL, which durable passes through to every
session (its write pool and its ``LISTEN`` connection alike).
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.model import Settings
from benchmarks.timing import temp_dir

POSTGRES_ENV = ("DURABLE_BENCH_POSTGRES_URL", "DURABLE_TEST_POSTGRES_URL")
"""Where ``--backend postgres`` finds its server when ``--postgres-url`` is not given."""


def postgres_server(settings: Settings) -> str:
    """The server URL for the ``postgres`` backend, or an error saying how to give one."""
    url = settings.postgres_url or next(
        (os.environ[k] for k in POSTGRES_ENV if os.environ.get(k)), None
    )
    if not url:
        raise RuntimeError(
            "the postgres backend needs --postgres-url URL "
            f"(or {' or '.join(POSTGRES_ENV)} in the environment)"
        )
    return url


def libpq_url(url: str) -> str:
    """``url`` as psycopg/libpq take it (no SQLAlchemy ``+driver`` suffix)."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql+psycopg", "postgresql+psycopg2", "postgres"):
        scheme = "postgresql"
    return f"{scheme}{sep}{rest}"


def _with_search_path(server: str, schema: str) -> str:
    sep = "&" if "?" in server else "?"
    return f"{server}{sep}options={urllib.parse.quote(f'-csearch_path={schema}')}"


def _admin(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(server), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(sql.encode())  # a schema name this module generated


@contextmanager
def postgres_schema(settings: Settings, prefix: str) -> Iterator[str]:
    """A new, empty schema on the configured server; yields a URL whose sessions use it.
    The schema is dropped afterwards (best effort)."""
    server = postgres_server(settings)
    schema = f"durable_bench_{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(server, f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(server, schema)
    finally:
        # best effort: a worker process that did not stop may still hold a lock
        with contextlib.suppress(Exception):
            _admin(server, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_log(settings: Settings, backend: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty durable log on ``backend``, removed afterwards."""
    if backend == "sqlite":
        with temp_dir(settings.tmpdir, prefix) as folder:
            yield f"sqlite:///{os.path.join(folder, prefix + '.db')}"
    elif backend == "postgres":
        with postgres_schema(settings, prefix) as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")
