"""W14's helpers for the browser half: a headless chromium, and a live run that the
benchmark appends to under a lease, as a worker's committer does."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_ENV = "DURABLE_TEST_CHROMIUM"
BATCH = 100
"""Events per append while a run is filled before it is watched."""


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium driven by Playwright: the system's (``$DURABLE_TEST_CHROMIUM``,
    else ``chromium`` on the path); Playwright downloads nothing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError("W14 needs playwright (pip install -e '.[dev]')") from None
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        raise RuntimeError(
            f"W14 needs chromium at {path}: install it (apt-get install chromium) "
            f"or point ${CHROMIUM_ENV} at one"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def live_run(
    app: Any, workflow: str, queue: str, prefill: int
) -> Iterator[tuple[str, Callable[[str], int]]]:
    """A new run of ``workflow`` (registered nowhere) leased by this process, with about
    ``prefill`` events of step calls appended; yields its id and ``append(text)``, which
    appends one ``message`` event in its own transaction and returns its ``seq``. The run
    is ended (cancelled under its lease) afterwards."""
    import msgspec

    import durable
    from durable.events import (
        CancelData,
        EventType,
        MessageData,
        NewEvent,
        ResultData,
        StepStartedData,
    )
    from durable.log.store import AppendRequest

    store = app.store
    starter = durable.Client(app.database)
    quiet = logging.getLogger("durable.client")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # no worker registers it: this process leases it
    try:
        run_id = starter.start(workflow, queue=queue).id
    finally:
        quiet.setLevel(level)
        starter.close()
    (lease,) = store.lease("bench-w14", 600.0, [workflow], [queue], 1)

    def append(events: list[Any]) -> int:
        (res,) = store.append([AppendRequest(run_id, lease.epoch, events)])
        if not res.ok:
            raise RuntimeError(f"the append to {run_id} was refused: {res}")
        return int(res.last_seq)

    calls: list[Any] = []
    for pos in range(1, prefill // 2 + 1):
        args = msgspec.msgpack.encode(([pos, f"item-{pos}"], {}))
        result = msgspec.msgpack.encode({"i": pos, "square": pos * pos})
        calls += [
            NewEvent(
                EventType.STEP_STARTED, StepStartedData(args=msgspec.Raw(args)), pos, "tick", 1
            ),
            NewEvent(
                EventType.STEP_COMPLETED, ResultData(result=msgspec.Raw(result)), pos, "tick", 1
            ),
        ]
    for i in range(0, len(calls), BATCH):
        append(calls[i : i + BATCH])
    try:
        yield run_id, lambda text: append([NewEvent(EventType.MESSAGE, MessageData(text=text))])
    finally:
        append([NewEvent(EventType.RUN_CANCELLED, CancelData(text="the benchmark is done"))])
