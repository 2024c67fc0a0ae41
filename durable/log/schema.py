"""The only schema of the log: one SQLAlchemy Core ``MetaData`` for every dialect.

``python -m durable.log.schema [sqlite|postgresql]`` prints its DDL.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

from durable.types import TERMINAL

__all__ = [
    "LIST_INDEX",
    "OPEN_CANCEL_REQUEST",
    "SCHEMA_VERSION",
    "UNFINISHED_DEDUP_KEY",
    "events",
    "meta",
    "metadata",
    "runs",
    "schedules",
    "signals",
    "workers",
]

SCHEMA_VERSION = 11
"""Bumped by every change to the tables below; see ``durable.log.migrate``.

1. The first schema.
2. ``durable_runs.started_at`` (first lease) and its index, for queue rate limits.
3. ``durable_events.append_id``: which append wrote a row, so that an append retried after an
   ambiguous commit (a lost acknowledgement) is recognised instead of written twice.
4. ``durable_runs.options`` (a run's own options over its workflow's, such as its retry
   policy) and ``durable_runs.version`` (the code version it started under); the
   ``durable_workers`` table (the workers that heartbeat against the log).
5. ``durable_runs.cancel_requested_at``: a client asked the worker holding the run to stop
   it (the run ends ``cancelled`` once its code has stopped, or its grace is over), and the
   partial index of the runs with such a request still open.
   ``durable_runs.step`` (the step the run is executing now) and ``.step_progress`` (the
   progress reported for the work in flight), for a run's progress and time left; the index
   of a workflow's completed runs by ``finished_at`` (how many steps its last run took).
6. ``durable_runs.watched_until``: until when some process watches the run's journal, so
   that an append that neither ends the run nor wakes workers is announced to watchers only
   when someone watches (the fenced update of an append returns it: no extra round trip).
7. The index of a queue's runs by ``(queue, status, started_at)`` in place of ``(queue,
   status)``: a bounded queue's runs not yet started are counted from the index alone.
8. ``durable_runs.blocked_versions``: the code versions that could not replay a ``blocked``
   run (one per line, each between newlines), so that only a worker of another version
   takes it up again; cleared when the run next suspends or is resumed.
9. ``durable_runs.dedup_key`` and its partial unique index over the runs not finished: at
   most one unfinished run per key (``client.start(dedup_key=)``), the key free again once
   that run ends.
10. The ``durable_schedules`` table: cron schedules (declared in an App's code, or made by a
    client at run time), their next and last tick, paused or not.
11. The index of the runs of one status in the runs list's order, ``(status, created_at,
    id)``, so that a page of the runs of a status, newest first, reads as many index entries
    as it shows, at any depth (``durable.log.listing``).
"""

LIST_INDEX = "ix_durable_runs_status_created_at_id"
"""The index of a status's runs in the runs list's order (v11)."""

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

OPEN_CANCEL_REQUEST = "cancel_requested_at IS NOT NULL AND status NOT IN ({})".format(
    ", ".join(f"'{s}'" for s in sorted(s.value for s in TERMINAL))
)
"""The runs whose holder was asked to cancel them and that have not ended yet (v5): the
predicate of their partial index, and of the one read that looks for them."""

UNFINISHED_DEDUP_KEY = "dedup_key IS NOT NULL AND status NOT IN ({})".format(
    ", ".join(f"'{s}'" for s in sorted(s.value for s in TERMINAL))
)
"""The runs that hold their deduplication key (v9): those with one that have not ended. The
predicate of the partial unique index that keeps one such run per key."""

_Id = sa.String(255)
_Time = sa.Float(precision=53)
"""Instants are Unix seconds (float) of the database's clock."""

runs = sa.Table(
    "durable_runs",
    metadata,
    sa.Column("id", _Id, primary_key=True),
    sa.Column("workflow", _Id, nullable=False),
    sa.Column("queue", _Id, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("input", sa.LargeBinary, nullable=False),
    sa.Column("output", sa.LargeBinary),
    sa.Column("error_type", sa.String(255)),
    sa.Column("error_message", sa.Text),
    sa.Column("parent_id", _Id),
    sa.Column("due_at", _Time, comment="when a worker may take it; NULL: not now"),
    sa.Column("wake_at", _Time),
    sa.Column("waiting_for", sa.String(300)),
    sa.Column("deadline_at", _Time),
    sa.Column("timeout", _Time),
    sa.Column("lease_owner", _Id),
    sa.Column("lease_epoch", sa.BigInteger, nullable=False, default=0),
    sa.Column("lease_expires_at", _Time),
    sa.Column("last_seq", sa.BigInteger, nullable=False, default=0),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("progress", sa.Float),
    sa.Column("stage", sa.String(255)),
    sa.Column("steps_completed", sa.Integer, nullable=False, default=0),
    sa.Column("stalls", sa.Integer, nullable=False, default=0),
    sa.Column("trace_context", sa.LargeBinary),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Column("finished_at", _Time),
    sa.Column("started_at", _Time, comment="when a worker first took it (v2)"),
    sa.Column("options", sa.LargeBinary, comment="its own options, msgpack (v4)"),
    sa.Column("version", _Id, comment="the code version it started under (v4)"),
    sa.Column("cancel_requested_at", _Time, comment="a client asked its holder to cancel it (v5)"),
    sa.Column("step", _Id, comment="the step it executes now, NULL between steps (v5)"),
    sa.Column("step_progress", sa.Float, comment="progress of the work in flight (v5)"),
    sa.Column("watched_until", _Time, comment="until when a process watches its journal (v6)"),
    sa.Column("blocked_versions", sa.Text, comment="versions that could not replay it (v8)"),
    sa.Column("dedup_key", _Id, comment="unique among the unfinished runs (v9)"),
    sa.Index(
        "ix_durable_runs_due",
        "queue",
        sa.desc("priority"),
        "due_at",
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    ),
    sa.Index("ix_durable_runs_status_workflow", "status", "workflow"),
    sa.Index("ix_durable_runs_parent_id", "parent_id"),
    sa.Index("ix_durable_runs_lease_owner", "lease_owner"),
    sa.Index("ix_durable_runs_created_at", "created_at"),
    sa.Index("ix_durable_runs_queue_started_at", "queue", "started_at"),
    sa.Index("ix_durable_runs_queue_status_started_at", "queue", "status", "started_at"),
    sa.Index(
        "ix_durable_runs_cancel_requested",
        "id",
        sqlite_where=sa.text(OPEN_CANCEL_REQUEST),
        postgresql_where=sa.text(OPEN_CANCEL_REQUEST),
    ),
    sa.Index("ix_durable_runs_workflow_status_finished_at", "workflow", "status", "finished_at"),
    sa.Index(
        "uq_durable_runs_dedup_key",
        "dedup_key",
        unique=True,
        sqlite_where=sa.text(UNFINISHED_DEDUP_KEY),
        postgresql_where=sa.text(UNFINISHED_DEDUP_KEY),
    ),
    sa.Index(LIST_INDEX, "status", "created_at", "id"),
)

events = sa.Table(
    "durable_events",
    metadata,
    sa.Column("run_id", _Id, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer),
    sa.Column("name", sa.String(255)),
    sa.Column("attempt", sa.Integer),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("at", _Time, nullable=False),
    sa.Column("outcome", sa.String(16), comment="set on outcome events; unique per position"),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("append_id", sa.String(36), comment="the append that wrote it (v3)"),
    sa.Index(
        "uq_durable_events_outcome",
        "run_id",
        "position",
        "outcome",
        unique=True,
        sqlite_where=sa.text("outcome IS NOT NULL"),
        postgresql_where=sa.text("outcome IS NOT NULL"),
    ),
)

signals = sa.Table(
    "durable_signals",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", _Id, nullable=False),
    sa.Column("name", _Id, nullable=False),
    sa.Column("payload", sa.LargeBinary),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("consumed_seq", sa.BigInteger),
    sa.Index("ix_durable_signals_run_id_name", "run_id", "name", "consumed_seq"),
)

workers = sa.Table(
    "durable_workers",
    metadata,
    sa.Column("id", _Id, primary_key=True),
    sa.Column("info", sa.LargeBinary, nullable=False, comment="host, pid, queues..., msgpack"),
    sa.Column("started_at", _Time, nullable=False),
    sa.Column("last_seen", _Time, nullable=False),
    sa.Index("ix_durable_workers_last_seen", "last_seen"),
    comment="one row per worker identity, refreshed as it heartbeats (v4)",
)

schedules = sa.Table(
    "durable_schedules",
    metadata,
    sa.Column("name", _Id, primary_key=True),
    sa.Column("app", _Id, comment="the App whose code declares it; NULL: made by a client"),
    sa.Column("workflow", _Id, nullable=False),
    sa.Column("queue", _Id, nullable=False),
    sa.Column("cron", sa.String(255), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("args", sa.LargeBinary, nullable=False, comment="the run's arguments after the tick"),
    sa.Column("catch_up", sa.String(8), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("next_tick", _Time, comment="the next tick to start; NULL: none is left"),
    sa.Column("last_tick", _Time, comment="the tick of the latest run started"),
    sa.Column("last_run_id", _Id),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Index("ix_durable_schedules_next_tick", "next_tick"),
    comment="one row per schedule: workers start a run per tick (v9)",
)

meta = sa.Table(
    "durable_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)


def _print_ddl(dialect_name: str) -> None:
    from sqlalchemy.schema import CreateIndex, CreateTable

    engine = sa.create_mock_engine(f"{dialect_name}://", lambda *a, **k: None)
    for table in metadata.sorted_tables:
        print(str(CreateTable(table).compile(dialect=engine.dialect)).strip() + ";")
        for index in table.indexes:
            print(str(CreateIndex(index).compile(dialect=engine.dialect)).strip() + ";")


if __name__ == "__main__":
    _print_ddl(sys.argv[1] if len(sys.argv) > 1 else "sqlite")
