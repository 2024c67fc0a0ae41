"""What a run needs from the process that executes it: the registry, the codec, the store,
and an :class:`Appender` through which its journal grows."""

from __future__ import annotations

import asyncio
import random as _random
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from durable.clock import SYSTEM_CLOCK, Clock
from durable.codec import Codec
from durable.engine.registry import Registry
from durable.errors import DurableError
from durable.log.store import AppendRequest, AppendResult, Store
from durable.telemetry import Telemetry

if TYPE_CHECKING:
    from durable.engine.pool import ProcessPool

__all__ = ["Appender", "NoAppends", "Services"]


class Appender(Protocol):
    """How a run appends to its journal: the worker's
    :class:`~durable.engine.committer.Committer`, or :class:`NoAppends` for a replay."""

    def submit(self, req: AppendRequest, *, waited: bool = True) -> Future[AppendResult]:
        """Queue ``req``; the future resolves once it is committed (or refused)."""
        ...

    def write(self, req: AppendRequest) -> AppendResult:
        """Append ``req`` and wait until it is committed (or refused)."""
        ...


class NoAppends:
    """The appender of a replay (``client.replay``): it executes nothing, so it writes
    nothing; an append reaching it is a bug of the engine, reported as such."""

    def submit(self, req: AppendRequest, *, waited: bool = True) -> Future[AppendResult]:
        """Refuse: a replay writes nothing."""
        raise DurableError(f"replaying run {req.run_id!r} tried to append to its journal")

    def write(self, req: AppendRequest) -> AppendResult:
        """Refuse: a replay writes nothing."""
        raise DurableError(f"replaying run {req.run_id!r} tried to append to its journal")


@dataclass
class Services:
    """What a run needs from the worker (or the replay) that executes it."""

    registry: Registry
    codec: Codec
    store: Store
    committer: Appender
    worker_id: str
    loop: asyncio.AbstractEventLoop | None = None
    step_pool: Executor | None = None
    rng: _random.Random = field(default_factory=_random.Random)
    telemetry: Telemetry | None = None
    """Spans, metrics and log records of the runs (``None``: nothing is observed)."""
    process_pool: ProcessPool | None = None
    """The worker's pool of ``executor="process"`` step bodies (``None``: a replay)."""
    clock: Clock = SYSTEM_CLOCK
    """The clock runs measure sleeps, backoffs and deadlines on (the log's own)."""
    version: str | None = None
    """The code version of the worker (what its child runs record, and what a run it
    parks ``BLOCKED`` notes as the version that could not replay it)."""
