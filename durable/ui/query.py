"""The runs list's filters, read from query parameters into typed values, and its keyset
pages, built on ``Client.list_runs``.

``list_runs`` filters by status, workflow and queue, newest first (``created_at``, then
``id``, descending). The time range, the id prefix and the ``before`` cursor are applied
here, over a window of ``list_runs`` rows that grows until the page is full or the log is
exhausted (at most :data:`MAX_SCAN` rows are read for one page).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from durable import Client, RunInfo, RunNotFoundError, Status

__all__ = ["MAX_LIMIT", "MAX_SCAN", "BadQuery", "RunPage", "RunQuery", "page_runs"]

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_SCAN = 20_000
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

    def matches(self, run: RunInfo) -> bool:
        """Whether ``run`` passes the filters that ``list_runs`` does not apply."""
        if self.id_prefix is not None and not run.id.startswith(self.id_prefix):
            return False
        if self.since is not None and run.created_at < self.since:
            return False
        return not (self.until is not None and run.created_at > self.until)


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs and the cursor of the next one."""

    runs: list[RunInfo]
    next_before: str | None
    """The ``before`` of the next (older) page; ``None`` on the last one."""
    truncated: bool = False
    """The scan stopped at :data:`MAX_SCAN` rows before the page was full."""


def _key(run: RunInfo) -> tuple[dt.datetime, str]:
    return (run.created_at, run.id)


def page_runs(client: Client, q: RunQuery) -> RunPage:
    """The page of runs that ``q`` asks for: at most ``q.limit`` runs older than the run
    ``q.before`` (exclusive), newest first."""
    cursor: tuple[dt.datetime, str] | None = None
    if q.before is not None:
        try:
            cursor = _key(client.get(q.before).info())
        except RunNotFoundError:
            raise BadQuery(f"before names no run: {q.before!r}") from None
    want = q.limit + 1
    window = want
    while True:
        rows = client.list_runs(q.status, q.workflow, q.queue, limit=window)
        picked = [r for r in rows if (cursor is None or _key(r) < cursor) and q.matches(r)][:want]
        exhausted = len(rows) < window
        past_range = q.since is not None and bool(rows) and rows[-1].created_at < q.since
        if len(picked) >= want or exhausted or past_range or window >= MAX_SCAN:
            break
        window = min(window * 4, MAX_SCAN)
    more = len(picked) > q.limit
    page = picked[: q.limit]
    truncated = not more and not exhausted and not past_range and len(page) < q.limit
    next_before = page[-1].id if (more or truncated) and page else None
    return RunPage(page, next_before, truncated)
