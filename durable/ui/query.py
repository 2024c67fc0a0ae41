"""The runs list's filters, read from query parameters into typed values, and its keyset
pages, read with ``Client.list_runs``.

Every filter goes to ``list_runs``, which applies it in the log's query: newest first
(``created_at``, then ``id``, descending), ``before=`` the last run of the previous page. A
page reads about as many rows as it shows, at any depth and under any filter the log's
indexes serve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from durable import Client, RunInfo, RunNotFoundError, Status

__all__ = ["MAX_LIMIT", "BadQuery", "RunPage", "RunQuery", "page_runs"]

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_TEXT = 255
RANGES: dict[str, float] = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400}
"""The preset time ranges of the filter form: created within the last ..."""


class BadQuery(ValueError):
    """A query parameter that is not a value the dashboard accepts (answered with 400)."""


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if len(value) > MAX_TEXT or "\x00" in value:
        raise BadQuery(f"{name} is not a valid value")
    return value


def _time(params: Mapping[str, str], name: str) -> dt.datetime | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} is not an ISO date and time: {value!r}") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class RunQuery:
    """The filters of one runs page."""

    status: Status | None = None
    workflow: str | None = None
    queue: str | None = None
    version: str | None = None
    id_prefix: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    range: str | None = None
    limit: int = DEFAULT_LIMIT
    before: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], now: dt.datetime | None = None) -> RunQuery:
        """Read the filters from query parameters; ``BadQuery`` names a bad one."""
        status = _text(params, "status")
        try:
            st = Status(status) if status is not None else None
        except ValueError:
            raise BadQuery(f"status must be one of {', '.join(s.value for s in Status)}") from None
        limit_text = _text(params, "limit")
        try:
            limit = int(limit_text) if limit_text is not None else DEFAULT_LIMIT
        except ValueError:
            raise BadQuery("limit must be a whole number") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadQuery(f"limit must be from 1 to {MAX_LIMIT}")
        rng = _text(params, "range")
        since = _time(params, "since")
        if rng is not None:
            if rng not in RANGES:
                raise BadQuery(f"range must be one of {', '.join(RANGES)}")
            now = now or dt.datetime.now(dt.UTC)
            since = now - dt.timedelta(seconds=RANGES[rng])
        return cls(
            status=st,
            workflow=_text(params, "workflow"),
            queue=_text(params, "queue"),
            version=_text(params, "version"),
            id_prefix=_text(params, "id"),
            since=since,
            until=_time(params, "until"),
            range=rng,
            limit=limit,
            before=_text(params, "before"),
        )

    def params(self, **change: str | None) -> dict[str, str]:
        """The query parameters of these filters (for links), with ``change`` applied."""
        out: dict[str, str] = {}
        if self.status is not None:
            out["status"] = self.status.value
        for key, value in (
            ("workflow", self.workflow),
            ("queue", self.queue),
            ("version", self.version),
            ("id", self.id_prefix),
        ):
            if value is not None:
                out[key] = value
        if self.range is not None:
            out["range"] = self.range
        else:
            if self.since is not None:
                out["since"] = self.since.isoformat()
        if self.until is not None:
            out["until"] = self.until.isoformat()
        if self.limit != DEFAULT_LIMIT:
            out["limit"] = str(self.limit)
        for key, v in change.items():
            if v is None:
                out.pop(key, None)
            else:
                out[key] = v
        return out

    def count_key(self) -> tuple[str | None, ...]:
        """What the counts per status depend on: every filter but the status and the page."""
        since = self.range or (self.since.isoformat() if self.since else None)
        until = self.until.isoformat() if self.until else None
        return (self.workflow, self.queue, self.version, self.id_prefix, since, until)


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs and the cursor of the next one."""

    runs: list[RunInfo]
    next_before: str | None
    """The ``before`` of the next (older) page; ``None`` on the last one."""


def page_runs(client: Client, q: RunQuery) -> RunPage:
    """The page of runs that ``q`` asks for: at most ``q.limit`` runs older than the run
    ``q.before`` (exclusive), newest first; one ``list_runs`` call (one more row than the
    page, to know whether a next page exists)."""
    try:
        rows = client.list_runs(
            q.status,
            q.workflow,
            q.queue,
            limit=q.limit + 1,
            before=q.before,
            since=q.since,
            until=q.until,
            id_prefix=q.id_prefix,
            version=q.version,
        )
    except RunNotFoundError:
        raise BadQuery(f"before names no run: {q.before!r}") from None
    page = rows[: q.limit]
    more = len(rows) > q.limit
    return RunPage(page, page[-1].id if more and page else None)
