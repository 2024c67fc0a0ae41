"""Observable gauges of the queues: how many runs wait for a worker, and since when.

The gauges are evaluated only when a metric reader collects. A meter keeps one list of callbacks
per instrument name (the SDK drops the callback of a second registration under the same name),
so the two gauges are registered once per process, and each App whose workers run adds a
*source* to them while its workers run. This small registry is the one piece of process-wide
state in durable's telemetry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from durable.telemetry import names as n

__all__ = ["Backlog", "QueueGauges", "Source"]

CACHE_SECONDS = 1.0
"""Both gauges of one collection share one query."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """One queue's runs that are due and wait for a worker."""

    queue: str
    depth: int
    """Runs due now that no live worker holds (pending, due to wake up, or with an expired
    lease)."""
    oldest_age: float
    """Seconds since the oldest of them became due (0 when there is none)."""


Source = Callable[[], Sequence[Backlog]]


class QueueGauges:
    """``durable.queue.depth`` and ``durable.queue.oldest_age``, per queue."""

    _instance: QueueGauges | None = None
    _instance_lock = threading.Lock()

    def __init__(self, meter: metrics.Meter) -> None:
        self._lock = threading.Lock()
        self._sources: dict[int, Source] = {}
        self._cache: tuple[float, list[Backlog]] = (0.0, [])
        meter.create_observable_gauge(
            "durable.queue.depth",
            callbacks=[self._depth],
            unit="{run}",
            description="Runs due now and waiting for a worker, per queue.",
        )
        meter.create_observable_gauge(
            "durable.queue.oldest_age",
            callbacks=[self._age],
            unit="s",
            description="Seconds the oldest run due in the queue has waited for a worker.",
        )

    @classmethod
    def shared(cls) -> QueueGauges:
        """The process's gauges, registered on the global meter provider at first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls(metrics.get_meter(n.SCOPE, n.VERSION))
            return cls._instance

    def add(self, source: Source) -> Callable[[], None]:
        """Observe ``source`` until the returned function is called."""
        key = id(source)
        with self._lock:
            self._sources[key] = source
            self._cache = (0.0, [])

        def remove() -> None:
            with self._lock:
                self._sources.pop(key, None)
                self._cache = (0.0, [])

        return remove

    def _backlogs(self) -> list[Backlog]:
        with self._lock:
            at, cached = self._cache
            if time.monotonic() - at < CACHE_SECONDS:
                return cached
            sources = list(self._sources.values())
        out: list[Backlog] = []
        for source in sources:
            try:
                out.extend(source())
            except Exception:  # the database is away: no observation this time
                continue
        with self._lock:
            self._cache = (time.monotonic(), out)
        return out

    def _depth(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(b.depth, {n.QUEUE: b.queue}) for b in self._backlogs()]

    def _age(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(b.oldest_age, {n.QUEUE: b.queue}) for b in self._backlogs()]
