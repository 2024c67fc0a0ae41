"""A schedule's ticks: its cron expression (read by ``croniter``) on the wall clock of its
time zone (``zoneinfo``), as instants.

The expression is matched against *wall-clock* times of the zone, then each matching wall
time is turned into an instant (Unix seconds). Where the zone changes its offset, a wall
time may not exist or may happen twice:

- **A wall time that does not exist** (the clocks jump forward over it, as from 02:00 to
  03:00 in Berlin on the last Sunday of March): its tick fires at the instant of the jump,
  which the zone's clocks show as the first time after the gap (03:00). Several ticks in
  the same gap fire as that one tick.
- **A wall time that happens twice** (the clocks go back over it, as from 03:00 to 02:00 on
  the last Sunday of October): its tick fires once, at its first occurrence (still in
  summer time); the repeated hour has no tick of its own.

So a tick of ``"30 2 * * *"`` fires once every day, and no day has two. This is the
behaviour of Debian's cron and of most schedulers. For a fixed interval in real time
through the offset changes (every 15 minutes, whatever the clocks say), use ``UTC``.

Ticks are whole seconds. Nothing here is mutable: a :class:`Cron` is a value.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from durable.errors import InvalidOptionError

__all__ = ["Cron", "check_timezone"]

_NOT_DETERMINISTIC = re.compile(r"^[hr](\(|/|$)", re.IGNORECASE)
"""croniter's hashed (``H``) and random (``R``) fields: every worker must compute the same
ticks, so neither is accepted."""

_SCAN = 100_000
"""Most wall times looked at for one tick (a bound that no real expression reaches)."""


def check_timezone(name: object) -> zoneinfo.ZoneInfo:
    """The zone named ``name`` (an IANA name such as ``"Europe/Berlin"``, or ``"UTC"``).

    Raises:
        InvalidOptionError: it is not a string, or no such zone is known.
    """
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(
            f"timezone must be an IANA time zone name such as 'Europe/Berlin' or 'UTC', "
            f"not {name!r}"
        )
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidOptionError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None


class Cron:
    """A cron expression in a time zone: its ticks as instants (Unix seconds).

    Five fields (minute, hour, day of month, month, day of week), or six with a last field
    of seconds (``"* * * * * */10"``: every ten seconds), as croniter reads them; the
    aliases ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly`` too.

    Raises:
        InvalidOptionError: the expression is not valid, never fires, or uses a hashed or
            random field; or the time zone is unknown.
    """

    __slots__ = ("expr", "tz")

    def __init__(self, expr: object, timezone: object = "UTC") -> None:
        self.tz = check_timezone(timezone)
        if not isinstance(expr, str) or not expr.strip():
            raise InvalidOptionError(
                f"cron must be a cron expression such as '0 3 * * *', not {expr!r}"
            )
        self.expr = expr.strip()
        if any(_NOT_DETERMINISTIC.match(f) for f in self.expr.split()):
            raise InvalidOptionError(
                f"cron {self.expr!r}: hashed (H) and random (R) fields are not supported "
                "(every worker must compute the same ticks)"
            )
        try:
            croniter(self.expr, dt.datetime(2000, 1, 1))
        except (CroniterBadCronError, ValueError, TypeError, KeyError) as exc:
            raise InvalidOptionError(
                f"cron {self.expr!r} is not a valid cron expression: {exc}"
            ) from None
        if self.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()) is None:
            raise InvalidOptionError(f"cron {self.expr!r} never fires")

    @property
    def timezone(self) -> str:
        """The zone's IANA name."""
        return self.tz.key

    def __repr__(self) -> str:
        return f"Cron({self.expr!r}, {self.timezone!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and (other.expr, other.tz) == (self.expr, self.tz)

    def __hash__(self) -> int:
        return hash((self.expr, self.timezone))

    # -- instants and wall times --------------------------------------------------------

    def local(self, instant: float) -> dt.datetime:
        """``instant`` as an aware datetime in the schedule's zone."""
        return dt.datetime.fromtimestamp(instant, self.tz)

    def iso(self, instant: float) -> str:
        """``instant`` in ISO 8601 in the schedule's zone, with its offset
        (``2024-03-31T03:00:00+02:00``): the part of a tick's run id after the name."""
        return self.local(instant).isoformat()

    def _wall(self, instant: float) -> dt.datetime:
        """The zone's naive wall time at ``instant``."""
        return self.local(instant).replace(tzinfo=None)

    def _offset(self, instant: int) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(instant, self.tz).utcoffset()

    def _instant(self, wall: dt.datetime) -> float:
        """The instant of a wall time that the expression matched: its first occurrence
        if it happens twice, the instant the clocks jump if it does not exist."""
        at = wall.replace(tzinfo=self.tz).timestamp()  # fold=0: the first occurrence
        if self._wall(at) == wall:
            return at
        # In a gap: fold=1 reads it with the offset after the jump (an instant before the
        # jump), fold=0 with the offset before (an instant after it). The jump is between.
        lo, hi = int(wall.replace(tzinfo=self.tz, fold=1).timestamp()), int(at)
        after = self._offset(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._offset(mid) == after:
                hi = mid
            else:
                lo = mid
        return float(hi)

    # -- ticks --------------------------------------------------------------------------

    def iter_after(self, instant: float) -> Iterator[float]:
        """The ticks after ``instant`` (strictly), in order, without end (or until the
        expression matches no date for 50 years)."""
        walls = croniter(self.expr, self._wall(instant))
        last = instant
        idle = 0
        while True:
            try:
                wall = walls.get_next(dt.datetime)
            except CroniterBadDateError:
                return
            at = self._instant(wall)
            if at > last:
                idle = 0
                last = at
                yield at
            else:
                idle += 1
                if idle > _SCAN:
                    return

    def next_after(self, instant: float) -> float | None:
        """The first tick after ``instant`` (strictly); ``None`` if there is none."""
        return next(self.iter_after(instant), None)

    def latest_at_or_before(self, instant: float) -> float | None:
        """The last tick at or before ``instant``; ``None`` if there is none."""
        wall = self._wall(instant).replace(microsecond=0) + dt.timedelta(microseconds=1)
        try:
            candidate = self._instant(croniter(self.expr, wall).get_prev(dt.datetime))
        except CroniterBadDateError:
            return None
        # A tick whose wall time is later than ``instant``'s can still be earlier (the
        # first pass of an hour that happens twice): walk forward from the candidate.
        latest = candidate
        for at in self.iter_after(candidate):
            if at > instant:
                break
            latest = at
        return latest

    def between(self, start: float, end: float, limit: int) -> list[float] | None:
        """The ticks ``t`` with ``start <= t <= end``, in order; ``None`` if there are more
        than ``limit``."""
        out: list[float] = []
        for at in self.iter_after(start - 1e-3):
            if at > end:
                break
            if len(out) == limit:
                return None
            out.append(at)
        return out
