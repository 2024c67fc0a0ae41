"""Bounded queues on the starting side: the ``max_pending`` of ``app.queue`` checked at
definition, and the bound a client's start carries down to the log (which counts and
refuses there, see ``durable.log.pending``).

The limit lives in the starting App's queue declarations, as a queue's other limits do: a
start through ``app.client()`` (or ``app.async_client()``, or ``durable runs start --app``)
into a queue that App declares with ``max_pending`` is bounded; a ``durable.Client(url)``
without code, or an App that does not declare the queue, starts unbounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["BoundedQueue", "check_max_pending", "max_pending_of"]


class BoundedQueue(Protocol):
    """What a queue declaration offers here (``durable.app.QueueConfig``)."""

    @property
    def max_pending(self) -> int | None:
        """At most this many runs not yet started (``None``: unbounded)."""


def check_max_pending(value: object) -> int | None:
    """``max_pending`` checked: ``None`` or an int of at least 1 (``TypeError`` for
    another type, a bool included; ``ValueError`` below 1)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"queue max_pending must be an int (a number of runs), "
            f"not {type(value).__name__} {value!r}"
        )
    if value < 1:
        raise ValueError(f"queue max_pending must be at least 1, not {value}")
    return value


def max_pending_of(queues: Mapping[str, BoundedQueue] | None, queue: str) -> int | None:
    """The bound of ``queue`` among the starting App's declarations, if any."""
    if queues is None:
        return None
    cfg = queues.get(queue)
    return cfg.max_pending if cfg is not None else None
