"""Reading a DBOS system database from outside DBOS (plain SQLAlchemy): how many runs of
a workflow have finished and when, and how many steps were journaled. Used outside the
timed loops, and to detect the end of a drain."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.peer_dbos.store import SystemDb

DRAIN_TIMEOUT = 900.0


def engine(db: SystemDb) -> Any:
    """A small SQLAlchemy engine on ``db``."""
    import sqlalchemy as sa

    if db.url.startswith("sqlite"):
        return sa.create_engine(db.url)
    url = "postgresql+psycopg://" + db.url.partition("://")[2]
    return sa.create_engine(url, pool_size=1, max_overflow=0)


def wait_finished(eng: Any, db: SystemDb, workflow: str, expected: int) -> float:
    """Poll until ``expected`` runs of ``workflow`` have succeeded; the last one's
    ``completed_at`` (epoch seconds, DBOS's clock: the same machine's). Raises if a run
    failed or the drain takes longer than :data:`DRAIN_TIMEOUT`."""
    import sqlalchemy as sa

    q = sa.text(
        f"SELECT status, count(*), max(completed_at) FROM {db.table('workflow_status')}"
        " WHERE name = :wf GROUP BY status"
    )
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        with eng.connect() as c:
            rows = {str(s): (int(n), m) for s, n, m in c.execute(q, {"wf": workflow})}
        done, last = rows.get("SUCCESS", (0, None))
        bad = {s: n for s, (n, _) in rows.items() if s not in ("SUCCESS", "PENDING", "ENQUEUED")}
        if bad:
            raise AssertionError(f"DBOS runs of {workflow} ended {bad}")
        if done >= expected and last is not None:
            return float(last) / 1000.0
        if time.monotonic() > deadline:
            raise TimeoutError(f"DBOS: {done} of {expected} runs of {workflow} done: {rows}")
        time.sleep(0.02)


def count_steps(eng: Any, db: SystemDb, function_name: str) -> int:
    """Journaled outputs of the step ``function_name`` (``operation_outputs`` rows)."""
    import sqlalchemy as sa

    with eng.connect() as c:
        n = c.execute(
            sa.text(
                f"SELECT count(*) FROM {db.table('operation_outputs')} WHERE function_name = :f"
            ),
            {"f": function_name},
        ).scalar()
    return int(n or 0)
