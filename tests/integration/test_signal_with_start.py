"""``client.signal_with_start``: start the run if no run has the id, and deliver a signal to
it, in one transaction; on every backend, from many threads at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import durable


def _cart(app: durable.App) -> Any:
    @app.workflow(name="cart")
    def cart(owner: str, items: int) -> list[Any]:
        got: list[Any] = []
        while len(got) < items:
            got.append(durable.wait_signal("add"))
        return [owner, got]

    return cart


def test_it_starts_the_run_then_signals_the_one_that_exists(
    app: durable.App, client: durable.Client
) -> None:
    cart = _cart(app)
    h = client.signal_with_start(cart, "ada", 2, id="cart-ada", signal="add", payload="tea")
    assert isinstance(h, durable.RunHandle) and h.id == "cart-ada"
    # The run exists: its arguments stay; the signal is delivered to it.
    again = client.signal_with_start(cart, "bob", 9, id="cart-ada", signal="add", payload="jam")
    assert again == h
    assert len(client.list_runs()) == 1
    with app.worker():
        assert h.result(timeout=15) == ["ada", ["tea", "jam"]]
    assert [e.data.get("payload") for e in h.events() if e.type == "signal_received"] == [
        "tea",
        "jam",
    ]


def test_concurrent_signal_with_start_starts_one_run_and_delivers_every_signal(
    app: durable.App, client: durable.Client
) -> None:
    cart = _cart(app)
    client.list_runs()  # the log exists before the race
    n = 8
    barrier = threading.Barrier(n)
    ids: list[str] = []

    def send(i: int) -> None:
        c = app.client()
        barrier.wait()
        ids.append(c.signal_with_start(cart, "ada", n, id="shared", signal="add", payload=i).id)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert ids == ["shared"] * n
    assert [r.id for r in client.list_runs()] == ["shared"]
    with app.worker():
        owner, got = client.get("shared").result(timeout=20)
    assert owner == "ada" and sorted(got) == list(range(n))


def test_an_id_of_another_workflow_is_refused_and_gets_no_signal(
    app: durable.App, client: durable.Client
) -> None:
    cart = _cart(app)

    @app.workflow(name="other")
    def other() -> Any:
        return durable.wait_signal("add")

    h = client.start(other, id="taken")
    with pytest.raises(durable.IdConflictError, match="'other'"):
        client.signal_with_start(cart, "ada", 1, id="taken", signal="add", payload="wrong")
    client.signal("taken", "add", "right")  # the oldest signal: had "wrong" been kept...
    with app.worker():
        assert h.result(timeout=15) == "right"


def test_a_dedup_key_held_elsewhere_refuses_the_start_and_the_signal(
    app: durable.App, client: durable.Client
) -> None:
    cart = _cart(app)
    holder = client.start(cart, "x", 1, dedup_key="k")
    with pytest.raises(durable.DuplicateRunError) as refused:
        client.signal_with_start(cart, "y", 1, id="new", signal="add", dedup_key="k")
    assert refused.value.run_id == holder.id
    assert [r.id for r in client.list_runs()] == [holder.id]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"signal": "add"}, durable.InvalidOptionError, "needs the run's id="),
        ({"id": "c1"}, durable.InvalidOptionError, "needs signal="),
        ({"id": "c1", "signal": ""}, ValueError, "signal name must be a non-empty string"),
        ({"id": "", "signal": "add"}, ValueError, "id must be a non-empty string"),
        ({"id": "c1", "signal": "add", "payload": object()}, durable.SerializationError, "'add'"),
        ({"id": "c1", "signal": "add", "dedup_key": 3}, durable.InvalidOptionError, "string"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    app: durable.App, client: durable.Client, kwargs: dict[str, Any], error: type, message: str
) -> None:
    cart = _cart(app)
    with pytest.raises(error, match=message):
        client.signal_with_start(cart, "ada", 1, **kwargs)
    with pytest.raises(durable.InvalidArgumentError, match="items"):
        client.signal_with_start(cart, "ada", "one", id="c1", signal="add")
    assert client.list_runs() == []


def test_the_async_form(app: durable.App) -> None:
    cart = _cart(app)

    async def go() -> Any:
        ac = app.async_client()
        h = await ac.signal_with_start(cart, "ada", 1, id="a1", signal="add", payload=5)
        assert isinstance(h, durable.AsyncRunHandle)
        return await h.result(timeout=15)

    with app.worker():
        assert asyncio.run(go()) == ["ada", [5]]
