"""The live counts per status of the runs page, read with ``Client.count_runs`` and kept a
moment, so that many open pages cost the log one count per filter every
:data:`COUNTS_TTL` seconds.

Counting reads an index entry per matching run (on a log of a million runs, tens of
milliseconds), so the runs page does not wait for it: the page's script asks
``/api/counts`` once the page is shown, and again every few seconds while it is.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from durable import Client, Status
from durable.ui.query import RunQuery

__all__ = ["COUNTS_TTL", "CountCache", "Counts"]

COUNTS_TTL = 2.0
"""Seconds a count is reused for."""
MAX_KEPT = 64
"""Filter sets whose counts are kept (the least recently used go first)."""


@dataclass(frozen=True, slots=True)
class Counts:
    """How many runs are in each status under some filters, as of ``read_at``."""

    by_status: dict[Status, int]
    read_at: float
    """``time.time()`` of the read."""

    @property
    def total(self) -> int:
        """Every run counted."""
        return sum(self.by_status.values())


class CountCache:
    """Counts per filter set, each reused for ``ttl`` seconds; one read at a time (a page
    that asks while another reads the same counts gets those)."""

    def __init__(self, client: Client, ttl: float = COUNTS_TTL) -> None:
        self._client = client
        self._ttl = ttl
        self._kept: OrderedDict[tuple[str | None, ...], Counts] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, q: RunQuery) -> Counts:
        """The counts under ``q``'s filters (its status and page aside)."""
        key = q.count_key()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and time.time() - kept.read_at < self._ttl:
                self._kept.move_to_end(key)
                return kept
            by_status = self._client.count_runs(
                q.workflow,
                q.queue,
                since=q.since,
                until=q.until,
                id_prefix=q.id_prefix,
                version=q.version,
            )
            counts = Counts(by_status, time.time())
            self._kept[key] = counts
            self._kept.move_to_end(key)
            while len(self._kept) > MAX_KEPT:
                self._kept.popitem(last=False)
            return counts
