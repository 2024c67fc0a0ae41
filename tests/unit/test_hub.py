"""``LocalHub.waiting``: the ``result()`` calls that wait for a change not yet happened
(what lets the virtual clock of ``durable.testing`` skip ahead)."""

from __future__ import annotations

import threading
import time

from durable.hub import LocalHub


def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_waiter_woken_by_a_change_no_longer_counts_as_waiting() -> None:
    hub = LocalHub()
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(hub.wait(hub.version, 10.0)))
    waiter.start()
    _until(lambda: hub.waiting == 1)
    # While this thread holds the hub's lock the woken waiter cannot return: it is still
    # inside wait(), yet it waits for nothing any more.
    with hub._cond:
        hub.run_changed()
        assert hub.waiting == 0
    waiter.join(10)
    assert woke == [1] and hub.waiting == 0


def test_waiters_count_until_they_return_and_a_late_one_counts_again() -> None:
    hub = LocalHub()
    assert hub.waiting == 0
    assert hub.wait(hub.version + 1, 10.0) == 0  # a change since: returns at once, uncounted
    assert hub.waiting == 0
    threads = [threading.Thread(target=hub.wait, args=(0, 0.3)) for _ in range(3)]
    for th in threads:
        th.start()
    _until(lambda: hub.waiting == 3)
    for th in threads:
        th.join(10)
    assert hub.waiting == 0  # timed out, with no change: each took itself off
    hub.run_changed()
    late = threading.Thread(target=hub.wait, args=(hub.version, 10.0))
    late.start()
    _until(lambda: hub.waiting == 1)
    hub.run_changed()
    late.join(10)
    assert not late.is_alive() and hub.waiting == 0
