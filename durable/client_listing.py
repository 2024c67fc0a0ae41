"""Listing and counting runs, and a run's arguments: the reading half of
:class:`~durable.client.Client` that a dashboard pages through.

A mixin, so that ``client.py`` stays about one run. ``list_runs`` returns keyset pages: the
list's order is creation then id, newest first, and ``before=`` (the last id of a page) asks
for the page after it, read from the log's indexes at that point (``Store.list_runs``), so
that a page costs the same at any depth and never repeats or skips a run while new ones
arrive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from durable.errors import CorruptJournalError, RunNotFoundError
from durable.log.store import RunFilter, RunRow, Store
from durable.types import RunInfo, Status

__all__ = ["Instant", "ListingOps", "instant"]

Instant = dt.datetime | float | int
"""A moment: a timezone-aware datetime, or Unix seconds."""


def instant(name: str, value: Instant | None) -> float | None:
    """``value`` as Unix seconds; a naive datetime (whose zone is unknown) or anything but
    a datetime or a number is refused, naming the parameter."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name} must be a timezone-aware datetime (a naive one could be any zone): "
                f"use datetime.now(timezone.utc) or give the zone"
            )
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value:
            raise ValueError(f"{name} must be a number of seconds, not NaN")
        return float(value)
    raise TypeError(f"{name} must be a datetime or Unix seconds, not {type(value).__qualname__}")


def _text(name: str, value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__qualname__}")
    return value


def _workflow_name(workflow: Callable[..., Any] | str | None) -> str | None:
    if workflow is None or isinstance(workflow, str):
        return workflow
    wf = getattr(workflow, "__durable_workflow__", None)
    if wf is None:
        raise TypeError(
            "workflow must be a workflow (a function decorated with @app.workflow) or its "
            f"name, not {type(workflow).__qualname__}"
        )
    return str(wf.name)


class ListingOps:
    """``list_runs``, ``count_runs`` and ``arguments``: a mixin of
    :class:`~durable.client.Client`."""

    _store: Store

    _row: Callable[[str], RunRow]
    _infos: Callable[[Sequence[RunRow]], list[RunInfo]]

    def _filter(
        self,
        status: Status | str | None,
        workflow: Callable[..., Any] | str | None,
        queue: str | None,
        limit: int,
        before: str | None,
        since: Instant | None,
        until: Instant | None,
        id_prefix: str | None,
        version: str | None,
    ) -> RunFilter:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError(f"limit must be an int, not {type(limit).__qualname__}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        cursor = None
        if before is not None:
            _text("before", before)
            try:
                row = self._row(before)
            except RunNotFoundError:
                raise RunNotFoundError(
                    f"before names no run: {before!r} (deleted since its page was read?)"
                ) from None
            cursor = (row.created_at, row.id)
        return RunFilter(
            status=Status(status) if status is not None else None,
            workflow=_workflow_name(workflow),
            queue=_text("queue", queue),
            limit=limit,
            before=cursor,
            since=instant("since", since),
            until=instant("until", until),
            id_prefix=_text("id_prefix", id_prefix) or None,
            version=_text("version", version),
        )

    def list_runs(
        self,
        status: Status | str | None = None,
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        id_prefix: str | None = None,
        version: str | None = None,
    ) -> list[RunInfo]:
        """Runs matching every given filter, newest first: by creation time, then by id,
        both descending. At most ``limit``.

        Args:
            before: a run's id: only the runs after that run in this order (created before
                it, or at the same instant with a smaller id). Give the last id of a page
                to get the next page.
            since: created at or after this moment (an aware datetime, or Unix seconds).
            until: created at or before this moment.
            id_prefix: ids that start with this text (exactly: case counts).
            version: runs started under this code version (``RunInfo.version``).

        Raises:
            RunNotFoundError: ``before`` names no run.
            ValueError: ``limit`` is below 1, a status is unknown, a datetime is naive.
        """
        flt = self._filter(status, workflow, queue, limit, before, since, until, id_prefix, version)
        return self._infos(self._store.list_runs(flt))

    def count_runs(
        self,
        workflow: Callable[..., Any] | str | None = None,
        queue: str | None = None,
        *,
        since: Instant | None = None,
        until: Instant | None = None,
        id_prefix: str | None = None,
        version: str | None = None,
    ) -> dict[Status, int]:
        """How many runs match the filters (those of :meth:`list_runs`), in each status:
        every :class:`~durable.Status` is a key, ``0`` where there is none. It reads every
        matching run's index entry: on a large log, count seldom (a dashboard caches it)."""
        flt = self._filter(None, workflow, queue, 1, None, since, until, id_prefix, version)
        counts = self._store.count_runs(flt)
        return {s: counts.get(s, 0) for s in Status}

    def arguments(self, run_id: str) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments the run was started with, decoded as plain
        values (lists, dicts, numbers, text: as the journal's events show them), without
        the workflow's code.

        Raises:
            RunNotFoundError: there is no such run.
            CorruptJournalError: its recorded arguments do not decode.
        """
        raw = self._row(run_id).input
        try:
            args, kwargs = msgspec.msgpack.decode(raw)
            return list(args), dict(kwargs)
        except (msgspec.DecodeError, TypeError, ValueError):
            msg = f"run {run_id!r}: its recorded arguments do not decode"
            raise CorruptJournalError(msg) from None
