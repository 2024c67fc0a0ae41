"""What every part of the store reads and writes alike: the columns of a run and of an event,
the decoding of a database row into a :class:`RunRow` or a :class:`JournalRow`, the
terminal statuses as SQL, and the bind-parameter helpers of prepared statements.

This is the only place where the text of ``durable_runs.status``, ``durable_runs.waiting_for``
and ``durable_events.type`` becomes a typed value (:class:`~durable.types.Status`,
:class:`~durable.states.WaitFor`, :class:`~durable.events.EventType`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from durable.errors import CorruptJournalError
from durable.events import EventType
from durable.log.schema import events, runs
from durable.log.store import JournalRow, RunRow
from durable.states import TERMINAL, Status, WaitFor

__all__ = [
    "CHUNK",
    "EVENT_COLUMNS",
    "RUN_COLUMNS",
    "TERMINAL_VALUES",
    "binds",
    "chunk_size",
    "ended",
    "insert_events",
    "journal_row",
    "named",
    "not_ended",
    "run_row",
    "select_run",
    "status_is",
]

RUN_COLUMNS = [runs.c[f] for f in RunRow.__slots__]
"""The columns of ``durable_runs`` in the order of :class:`RunRow`'s fields."""

EVENT_COLUMNS = [events.c[f] for f in JournalRow.__slots__]
"""The columns of ``durable_events`` in the order of :class:`JournalRow`'s fields."""

TERMINAL_VALUES = tuple(sorted(s.value for s in TERMINAL))
"""The column text of the terminal statuses (:data:`durable.types.TERMINAL`)."""

_STATUS: dict[str, Status] = {s.value: s for s in Status}
_EVENT: dict[str, EventType] = {t.value: t for t in EventType}
_STATUS_AT = RunRow.__slots__.index("status")
_WAIT_AT = RunRow.__slots__.index("waiting_for")


def run_row(row: Sequence[Any]) -> RunRow:
    """A :class:`RunRow` of a row of :data:`RUN_COLUMNS`."""
    v = list(row)
    v[_STATUS_AT] = _STATUS[v[_STATUS_AT]]
    if v[_WAIT_AT] is not None:
        v[_WAIT_AT] = WaitFor.from_column(v[_WAIT_AT])
    return RunRow(*v)


def journal_row(row: Sequence[Any]) -> JournalRow:
    """A :class:`JournalRow` of a row of :data:`EVENT_COLUMNS`.

    Raises:
        CorruptJournalError: the row's event type is none that durable knows.
    """
    t = _EVENT.get(row[2])
    if t is None:
        raise CorruptJournalError(f"run {row[0]!r}: unknown event type {row[2]!r} at seq {row[1]}")
    return JournalRow(row[0], row[1], t, row[3], row[4], row[5], row[6], row[7], row[8])


def status_is(status: Status) -> Any:
    """``status = '<status>'`` with the text inlined (prepared statements compare a constant,
    which the planner may match against an index)."""
    return runs.c.status == sa.literal_column(f"'{status.value}'")


def ended() -> Any:
    """``status IN (<terminal statuses>)``, the texts inlined."""
    return runs.c.status.in_([sa.literal_column(f"'{s}'") for s in TERMINAL_VALUES])


def not_ended() -> Any:
    """``status != '<terminal>' AND ...``, the texts inlined: one comparison per terminal
    status, not ``NOT IN (...)``, for which SQLite builds a temporary b-tree of the list
    each time the statement runs (it sits in every append's fenced update)."""
    return sa.and_(*(runs.c.status != sa.literal_column(f"'{s}'") for s in TERMINAL_VALUES))


def select_run() -> Any:
    """One run's row by id (binds ``id``)."""
    return sa.select(*RUN_COLUMNS).where(runs.c.id == sa.bindparam("id"))


def insert_events() -> Any:
    """``INSERT INTO events`` of one row, every column bound (run as an executemany)."""
    return events.insert().values({c.name: sa.bindparam(c.name) for c in events.c})


def binds(prefix: str, n: int) -> list[Any]:
    """``n`` bind parameters named ``prefix0 .. prefixN-1`` (an IN list of a known length)."""
    return [sa.bindparam(f"{prefix}{i}") for i in range(n)]


CHUNK = 256
"""Most rows one statement of a batch names (an ``INSERT`` of many runs, an ``IN`` list)."""


def chunk_size(left: int) -> int:
    """The next chunk's size of a batch with ``left`` items to go: :data:`CHUNK`, else the
    largest power of two that fits, so that few statement shapes are compiled."""
    if left >= CHUNK:
        return CHUNK
    return 1 << (left.bit_length() - 1)


def named(prefix: str, values: Sequence[Any]) -> dict[str, Any]:
    """The parameters of :func:`binds`."""
    return {f"{prefix}{i}": v for i, v in enumerate(values)}
