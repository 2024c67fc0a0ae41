"""Reading a log from the benchmark process with plain SQL (outside any timed interval, or
to poll for a condition): counts of runs and events, through the schema of
``durable.log.schema``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

V = TypeVar("V")


def sa_url(url: str) -> str:
    """``url`` as SQLAlchemy takes it (Postgres: with durable's driver)."""
    if url.startswith("sqlite"):
        return url
    from durable.log.postgres import normalize_url

    return normalize_url(url)


@contextmanager
def log_engine(url: str) -> Iterator[Any]:
    """A SQLAlchemy engine on the log at ``url``, disposed afterwards."""
    import sqlalchemy as sa

    engine = sa.create_engine(sa_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def scalar(engine: Any, sql: str, **params: Any) -> Any:
    """The first column of the first row of ``sql``."""
    import sqlalchemy as sa

    with engine.connect() as c:
        return c.execute(sa.text(sql), params).scalar()


def rows(engine: Any, sql: str, **params: Any) -> list[Any]:
    """Every row of ``sql``."""
    import sqlalchemy as sa

    with engine.connect() as c:
        return list(c.execute(sa.text(sql), params))


def poll(
    probe: Callable[[], V],
    done: Callable[[V], bool],
    timeout: float,
    what: str,
    every: float = 0.02,
) -> V:
    """Call ``probe`` every ``every`` seconds until ``done`` of its value; that value.
    Raises :class:`TimeoutError` (with the last value) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: still {value!r} after {timeout:.0f}s")
        time.sleep(every)


def status_counts(engine: Any, workflow: str) -> dict[str, int]:
    """Runs of ``workflow`` by status."""
    return {
        str(s): int(n)
        for s, n in rows(
            engine,
            "SELECT status, count(*) FROM durable_runs WHERE workflow = :wf GROUP BY status",
            wf=workflow,
        )
    }
