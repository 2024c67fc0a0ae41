"""Deduplication keys, ``client.start(dedup_key=)``: at most one unfinished run per key, the
key free again once that run ends, the id still the idempotency key; on every backend, from
threads and from processes."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Processes

import durable
from durable import Status

PROCS = Path(__file__).parent / "procs"


def _gated(app: durable.App) -> Any:
    @app.workflow(name="invoice")
    def invoice(n: int) -> int:
        durable.wait_signal("go")
        return n

    return invoice


def _count(client: durable.Client) -> int:
    return len(client.list_runs(limit=1000))


def test_a_key_held_by_an_unfinished_run_refuses_a_start_and_writes_nothing(
    app: durable.App, client: durable.Client
) -> None:
    invoice = _gated(app)
    first = client.start(invoice, 1, dedup_key="invoice-7")
    assert first.info().dedup_key == "invoice-7"
    with pytest.raises(durable.DuplicateRunError) as refused:
        client.start(invoice, 2, id="second", dedup_key="invoice-7")
    assert (refused.value.dedup_key, refused.value.run_id) == ("invoice-7", first.id)
    assert f"{first.id!r}" in str(refused.value) and "'invoice-7'" in str(refused.value)
    assert isinstance(refused.value, durable.DurableError)
    assert _count(client) == 1
    # The id of the refused start stays free; another key is no trouble either.
    assert client.start(invoice, 2, id="second").info().dedup_key is None
    assert client.start(invoice, 3, dedup_key="invoice-8").info().dedup_key == "invoice-8"
    # The id comes first: a start of an existing id returns that run, key or not.
    assert client.start(invoice, 1, id=first.id, dedup_key="invoice-7") == first
    assert client.start(invoice, 9, id="second", dedup_key="invoice-7").id == "second"
    assert _count(client) == 3


@pytest.mark.parametrize("ending", ["completed", "failed", "cancelled"])
def test_the_key_is_free_again_once_its_run_has_ended(
    app: durable.App, client: durable.Client, ending: str
) -> None:
    @app.workflow(name="job")
    def job(fail: bool) -> str:
        if fail:
            raise ValueError("no")
        durable.wait_signal("go")
        return "done"

    first = client.start(job, ending == "failed", dedup_key="k")
    with app.worker():
        if ending == "completed":
            first.signal("go")
            assert first.result(timeout=15) == "done"
        elif ending == "failed":
            with pytest.raises(durable.RunFailedError):
                first.result(timeout=15)
        else:
            first.cancel()
            with pytest.raises(durable.RunCancelledError):
                first.result(timeout=15)
    assert first.status().value == ending
    second = client.start(job, False, dedup_key="k")
    assert second.id != first.id
    if ending != "completed":  # a resume takes the key again: refused while it is held
        with pytest.raises(durable.DuplicateRunError) as refused:
            client.resume(first.id)
        assert refused.value.run_id == second.id
        assert first.status().value == ending
        second.cancel()
        assert client.resume(first.id).status() is Status.PENDING
        with pytest.raises(durable.DuplicateRunError):
            client.start(job, False, dedup_key="k")


def test_concurrent_starts_with_one_key_from_threads_start_one_run(
    app: durable.App, client: durable.Client
) -> None:
    invoice = _gated(app)
    client.list_runs()  # the log exists before the race
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def start(i: int) -> None:
        c = app.client()
        barrier.wait()
        try:
            h = c.start(invoice, i, id=f"t{i}", dedup_key="shared")
            got = ("started", h.id)
        except durable.DuplicateRunError as exc:
            got = ("refused", exc.run_id)
        with lock:
            outcomes.append(got)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    started = [rid for kind, rid in outcomes if kind == "started"]
    assert len(outcomes) == n and len(started) == 1
    assert {rid for kind, rid in outcomes if kind == "refused"} == set(started)
    assert [r.id for r in client.list_runs()] == started


@pytest.mark.timeout(120)
def test_concurrent_starts_with_one_key_from_processes_start_one_run(
    db_url: str, tmp_path: Path, processes: Processes
) -> None:
    client = durable.Client(db_url)  # creates the log before the race
    go = tmp_path / "go"
    try:
        starters = [
            processes.python(PROCS / "dedup_starter.py", db_url, go, f"p{i}", name=f"p{i}")
            for i in range(4)
        ]
        for s in starters:
            s.wait_for_output("ready", timeout=30)
        go.write_text("")
        results = []
        for s in starters:
            assert s.wait(60) == 0, s.describe()
            results.append(json.loads(s.output().strip().splitlines()[-1]))
        started = [r["started"] for r in results if "started" in r]
        assert len(started) == 1, results
        assert [r["refused"] for r in results if "refused" in r] == started * 3
        assert [r.id for r in client.list_runs()] == started
    finally:
        client.close()


def test_start_many_with_dedup_keys(app: durable.App, client: durable.Client) -> None:
    invoice = _gated(app)
    hs = client.start_many(invoice, [1, 2, 3], dedup_keys=["a", None, "c"])
    assert [h.info().dedup_key for h in hs] == ["a", None, "c"]
    with pytest.raises(durable.DuplicateRunError) as refused:
        client.start_many(invoice, [4, 5], ids=["x", "y"], dedup_keys=["new", "c"])
    assert refused.value.run_id == hs[2].id
    assert _count(client) == 3  # the batch is written whole or not at all
    with pytest.raises(durable.InvalidOptionError, match="repeat"):
        client.start_many(invoice, [4, 5], dedup_keys=["z", "z"])
    with pytest.raises(durable.InvalidOptionError, match="2 dedup_keys for 3 runs"):
        client.start_many(invoice, [4, 5, 6], dedup_keys=["p", "q"])
    with pytest.raises(durable.InvalidOptionError, match="not a string"):
        client.start_many(invoice, [4], dedup_keys="p")  # type: ignore[arg-type]
    assert _count(client) == 3


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "dedup_key must be a non-empty string"),
        (7, "dedup_key must be a string, not int"),
        ("k" * 256, "dedup_key is longer than 255 characters"),
        ("a\x00b", "dedup_key cannot contain a NUL character"),
    ],
)
def test_a_bad_dedup_key_is_refused_before_anything_is_written(
    app: durable.App, client: durable.Client, key: Any, message: str
) -> None:
    invoice = _gated(app)
    with pytest.raises(durable.InvalidOptionError) as err:
        client.start(invoice, 1, dedup_key=key)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)
    assert _count(client) == 0


def test_the_async_client_starts_with_a_dedup_key(app: durable.App) -> None:
    invoice = _gated(app)

    async def go() -> None:
        ac = app.async_client()
        h = await ac.start(invoice, 1, dedup_key="async-key")
        assert (await h.info()).dedup_key == "async-key"
        with pytest.raises(durable.DuplicateRunError) as refused:
            await ac.start(invoice, 2, dedup_key="async-key")
        assert refused.value.run_id == h.id

    asyncio.run(go())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_durable_start_dedup_key_on_the_command_line(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from durable.cli.main import main

    assert main(["--database", db_url, "start", "job", "1", "--dedup-key", "k1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dedup_key"] == "k1"
    code = main(["--database", db_url, "start", "job", "2", "--dedup-key", "k1"])
    err = capsys.readouterr().err
    assert code == 1 and "dedup key 'k1' is held by run" in err and "Traceback" not in err
