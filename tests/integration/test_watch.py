"""Watching runs: ``client.watch``, ``RunHandle.watch`` and ``AsyncClient.watch``, on real
SQLite files and the real Postgres server, with the watcher in another process where the
point is that the push crosses processes (``procs/watcher.py``).

- the journal from ``after``, then each event as it is committed, ending after the run's
  terminal event; ``types`` filters; ``timeout`` raises ``TimeoutError``;
- bad input: an unknown id raises ``RunNotFoundError`` before any event; a negative
  ``after`` or an unknown type ``InvalidOptionError``;
- pushed, not polled: an idle watch reads nothing; many watchers share one listener;
- on Postgres, a watcher whose connections are ended (``pg_terminate_backend``) reconnects
  and resumes from its last seq: no event lost or repeated.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from harness.processes import Proc, Processes, wait_for

import durable
from durable.log.postgres import normalize_url
from durable.log.wakeup import ALL, FifoListener, FolderWaker
from durable.log.watch_postgres import CHANNEL_SQL

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and POSIX processes"),
]

WATCHER = Path(__file__).resolve().parent / "procs" / "watcher.py"


def _gated(app: durable.App) -> Any:
    """A workflow of three steps with a signal wait between each two."""

    @app.step
    def work(i: int) -> int:
        return i

    @app.workflow
    def gated() -> int:
        work(1)
        durable.wait_signal("a")
        work(2)
        durable.wait_signal("b")
        return work(3)

    return gated


def _printed(proc: Proc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]


def _count(proc: Proc, kind: str) -> int:
    return sum(1 for e in _printed(proc) if e["type"] == kind)


def _journal(client: durable.Client, run_id: str) -> list[tuple[int, str]]:
    return [(e.seq, str(e.type)) for e in client.events(run_id)]


def _watch_in_thread(events: Any) -> tuple[threading.Thread, list[durable.LogEvent]]:
    seen: list[durable.LogEvent] = []
    t = threading.Thread(target=lambda: seen.extend(events), daemon=True)
    t.start()
    return t, seen


# ---------------------------------------------------------------- across processes


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_watcher_in_another_process_sees_every_event_once(
    make_app: Any, db_url: str, processes: Processes, mode: str
) -> None:
    app = make_app(poll_interval=30.0)
    gated = _gated(app)
    client = app.client()
    with app.worker():
        h = client.start(gated)
        watcher = processes.python(WATCHER, db_url, h.id, 0, mode, name="watcher")
        watcher.wait_for(lambda: _count(watcher, "wait_started") == 1, 30, "the first wait")
        client.signal(h.id, "a")
        watcher.wait_for(lambda: _count(watcher, "wait_started") == 2, 30, "the second wait")
        client.signal(h.id, "b")
        assert watcher.wait(30) == 0, watcher.describe()
    seen = [(e["seq"], e["type"]) for e in _printed(watcher)]
    assert seen == _journal(client, h.id)
    assert seen[-1][1] == "run_completed"
    done = watcher.output().splitlines()[-1]
    assert done.startswith("done ") and "pushed=True" in done, watcher.describe()
    # One read at the start and one per wake-up: never a read per poll interval.
    reads = int(done.split("reads=")[1].split()[0])
    assert reads <= len(seen) + 1, done


def test_a_watch_resumes_after_its_connections_are_ended(
    make_app: Any, db_url: str, backend: str, processes: Processes
) -> None:
    if backend != "postgres":
        pytest.skip("ends server sessions: a SQLite file has none")
    app = make_app(poll_interval=30.0)
    gated = _gated(app)
    client = app.client()
    admin = sa.create_engine(normalize_url(db_url), isolation_level="AUTOCOMMIT")

    def end_sessions(pid: int) -> int:
        with admin.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (f"durable/{pid}",),
            ).all()
        return len(rows)

    try:
        with app.worker():
            h = client.start(gated)
            w = processes.python(WATCHER, db_url, h.id, name="watcher")
            w.wait_for(lambda: _count(w, "wait_started") == 1, 30, "the first wait")
            # Its listener and its pooled read connections, all at once.
            assert end_sessions(w.pid) >= 1
            client.signal(h.id, "a")
            w.wait_for(lambda: _count(w, "wait_started") == 2, 30, "the second wait")
            assert end_sessions(w.pid) >= 1
            client.signal(h.id, "b")
            assert w.wait(30) == 0, w.describe()
    finally:
        admin.dispose()
    seen = [(e["seq"], e["type"]) for e in _printed(w)]
    assert seen == _journal(client, h.id)  # nothing lost, nothing twice
    assert "watch connection lost" in w.output()


# ---------------------------------------------------------------- in one process


def test_after_types_and_the_handle(app: durable.App, client: durable.Client) -> None:
    gated = _gated(app)
    with app.worker():
        h = client.start(gated)
        client.signal(h.id, "a")
        client.signal(h.id, "b")
        assert h.result(30) == 3
    journal = _journal(client, h.id)
    assert [(e.seq, str(e.type)) for e in h.watch()] == journal
    assert [e.seq for e in client.watch(h.id, after=4)] == [s for s, _ in journal if s > 4]
    assert list(client.watch(h.id, after=len(journal))) == []
    kinds = ["STEP_COMPLETED", durable.EventType.RUN_COMPLETED]
    got = [str(e.type) for e in client.watch(h.id, types=kinds)]
    assert got == ["step_completed"] * 3 + ["run_completed"]
    # A filter that excludes the end still ends with the run.
    assert [str(e.type) for e in h.watch(types="signal_received")] == ["signal_received"] * 2


def test_a_watch_ends_with_a_cancel(app: durable.App, client: durable.Client) -> None:
    gated = _gated(app)
    with app.worker():
        h = client.start(gated)
        t, seen = _watch_in_thread(h.watch(timeout=60))
        wait_for(lambda: any(e.type == "wait_started" for e in seen), 30, "the wait")
        h.cancel()
        t.join(30)
    assert not t.is_alive()
    assert [(e.seq, str(e.type)) for e in seen] == _journal(client, h.id)
    assert seen[-1].type == "run_cancelled"


def test_bad_input(app: durable.App, client: durable.Client) -> None:
    gated = _gated(app)
    h = client.start(gated)
    with pytest.raises(durable.RunNotFoundError, match="no run with id 'nope'"):
        client.watch("nope")
    for after in (-1, "1", True, 1.5):
        with pytest.raises(durable.InvalidOptionError, match="after must be"):
            client.watch(h.id, after=after)  # type: ignore[arg-type]
    with pytest.raises(durable.InvalidOptionError, match=r"unknown event type 'nope'.*step_"):
        client.watch(h.id, types=["step_completed", "nope"])
    with pytest.raises(ValueError, match="types is empty"):
        client.watch(h.id, types=[])
    with pytest.raises(durable.InvalidOptionError, match="timeout"):
        client.watch(h.id, timeout=-1)
    with pytest.raises(TimeoutError, match=r"did not end within 0\.2s"):
        for _ in client.watch(h.id, timeout=0.2):
            pass

    async def main() -> None:
        ac = app.async_client()
        with pytest.raises(durable.InvalidOptionError):
            ac.watch(h.id, after=-1)
        with pytest.raises(durable.RunNotFoundError):
            async for _ in ac.watch("nope"):
                raise AssertionError("an event of no run")
        seen = []
        with pytest.raises(TimeoutError):
            async for ev in ac.watch(h.id, timeout=0.2):
                seen.append(ev.type)
        assert seen == ["run_started"]

    asyncio.run(main())


def test_async_watch_follows_a_run(app: durable.App, client: durable.Client) -> None:
    gated = _gated(app)

    async def main() -> list[tuple[int, str]]:
        ac = app.async_client()
        h = await ac.start(gated)
        seen: list[tuple[int, str]] = []
        async for ev in h.watch(timeout=60):
            seen.append((ev.seq, str(ev.type)))
            if ev.type == "wait_started":
                await ac.signal(h.id, "a" if len(seen) < 6 else "b")
        return seen

    with app.worker():
        seen = asyncio.run(main())
    assert seen[-1][1] == "run_completed"
    assert seen == _journal(client, client.list_runs(limit=1)[0].id)


def test_an_idle_watch_reads_nothing_and_watchers_share_one_listener(
    app: durable.App, client: durable.Client
) -> None:
    gated = _gated(app)
    with app.worker():
        handles = [client.start(gated) for _ in range(20)]
        watches = [_watch_in_thread(h.watch(timeout=60)) for h in handles]
        wait_for(
            lambda: all(any(e.type == "wait_started" for e in seen) for _, seen in watches),
            30,
            "every run waiting",
        )
        shared = client._watching()
        assert shared is app.client()._watching()  # an App's clients share it
        listeners = [t for t in threading.enumerate() if t.name in ("durable-watch",)]
        assert len(listeners) <= 1  # Postgres: one LISTEN thread (SQLite: one FIFO reader)
        before = shared.reads
        time.sleep(1.0)  # twice the fallback poll: a watch that polled would read meanwhile
        assert shared.reads == before
        for h in handles:
            client.signal(h.id, "a")
            client.signal(h.id, "b")
        for t, _ in watches:
            t.join(30)
    for h, (t, seen) in zip(handles, watches, strict=True):
        assert not t.is_alive()
        assert [(e.seq, str(e.type)) for e in seen] == _journal(client, h.id)


# ---------------------------------------------------------------- the pushes themselves


def test_postgres_channels_differ_per_schema(
    db_url: str, another_db_url: str, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("notification channels: a SQLite file has none")
    names = []
    for url in (db_url, another_db_url):
        engine = sa.create_engine(normalize_url(url))
        try:
            with engine.connect() as c:
                names.append(c.exec_driver_sql(f"SELECT {CHANNEL_SQL}").scalar())
        finally:
            engine.dispose()
    assert names[0] != names[1]
    assert all(str(n).startswith("durable_watch_") for n in names)


def test_sqlite_watcher_fifos_carry_run_ids(tmp_path: Path) -> None:
    folder = str(tmp_path / "watch")
    waker = FolderWaker(folder)
    waker.wake(["nobody-listens"])  # no folder: nothing to do, no error
    got: list[list[str]] = [[], []]
    arrived = threading.Event()

    def on(i: int) -> Any:
        def record(payload: str) -> None:
            got[i].append(payload)
            arrived.set()

        return record

    first = FifoListener(folder, on(0), lines=True)
    try:
        waker.wake(["r1", "r2"])
        wait_for(lambda: got[0], 10, "the first message")
        assert got[0] == ["r1\nr2"]
        # A listener that joins right after a wake-up (same clock tick) is not missed.
        second = FifoListener(folder, on(1), lines=True)
        try:
            waker.wake(["r3"])
            wait_for(lambda: got[1] and len(got[0]) == 2, 10, "the second message")
            assert got[1] == ["r3"] and got[0][-1] == "r3"
            # Too many ids for one atomic pipe write: "every run".
            waker.wake([f"run-{i:05}" for i in range(2000)])
            wait_for(lambda: len(got[1]) == 2, 10, "the overlong message")
            assert got[1][-1] == ALL
        finally:
            second.stop()
    finally:
        first.stop()


# ---------------------------------------------------------------- only watched runs announce


def test_appends_are_announced_only_for_watched_runs(make_app: Any) -> None:
    """A step append to a run that nobody watches is not announced (the run's end is);
    once a watch has marked the run, every append to it is."""
    app = make_app()

    @app.step
    def tick(i: int) -> int:
        time.sleep(0.15)  # appends far enough apart not to be merged into one notification
        return i

    @app.workflow
    def five(gate: bool) -> int:
        if gate:
            durable.wait_signal("go")
        for i in range(5):
            tick(i)
        return 5

    heard: list[str] = []
    lock = threading.Lock()

    def on_append(payload: str) -> None:
        with lock:
            heard.extend(payload.split("\n") if payload else [])

    listener = app.store.listen_journals(on_append)
    assert listener is not None
    client = app.client()
    try:
        with app.worker():
            quiet = client.start(five, False)
            assert quiet.result(timeout=30) == 5
            watched = client.start(five, True)
            wait_for(lambda: watched.status() == durable.Status.SLEEPING, 30, "asleep")
            seen: list[str] = []
            first = threading.Event()

            def watch() -> None:
                for ev in watched.watch(timeout=30):
                    seen.append(str(ev.type))
                    first.set()

            t = threading.Thread(target=watch)
            t.start()
            assert first.wait(10)  # the watch has marked the run and read its journal
            client.signal(watched.id, "go")
            t.join(30)
            assert seen[-1] == "run_completed"
        time.sleep(0.3)  # the listener's thread delivers the last notifications
    finally:
        listener.stop()
    steps = [e for e in client.events(quiet.id) if str(e.type) == "step_completed"]
    assert len(steps) == 5
    with lock:
        quiet_heard, watched_heard = heard.count(quiet.id), heard.count(watched.id)
    # The quiet run: its end, never its five step appends.
    assert 1 <= quiet_heard <= 2, heard
    # The watched run: its five step appends after the signal, and its end.
    assert watched_heard >= 5, heard
