"""Children without waiting: ``durable.start_child``, ``ChildHandle.result()`` and
``durable.wait_first``, in sync and async workflows, on every backend.

Children that must not end before the test says so wait for the signal ``go``: what the
parent does meanwhile is then certain, with no timing involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import durable
from durable import Status


def _types(h: Any) -> list[tuple[str, int | None]]:
    return [(e.type, e.position) for e in h.events() if e.position is not None]


def _gated(app: durable.App, name: str = "gated") -> Any:
    @app.workflow(name=name)
    def gated(x: int) -> int:
        durable.wait_signal("go")
        return x * 10

    return gated


def _waiting(client: durable.Client, run_id: str) -> str | None:
    """What the run waits for (``None``: nothing, or no such run yet)."""
    try:
        return client.get(run_id).info().waiting_for
    except durable.RunNotFoundError:
        return None


def _kids(client: durable.Client, parent: str) -> list[durable.RunInfo]:
    return sorted(
        (r for r in client.list_runs(limit=1000) if r.parent_id == parent), key=lambda r: r.id
    )


# ---------------------------------------------------------------- start_child and result()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_the_parent_goes_on_while_its_child_runs_then_waits_for_its_result(
    app: durable.App, client: durable.Client, is_async: bool, wait_until: Callable[..., Any]
) -> None:
    gated = _gated(app)

    @app.step(name="note")
    def note(child_id: str) -> str:
        return f"started {child_id}"

    if is_async:

        @app.workflow(name="parent")
        async def parent(x: int) -> list[Any]:
            child = durable.start_child(gated, x)  # no await: it only starts the child
            said = await note(child.id)
            return [child.id, child.workflow, child.position, said, await child.result()]

    else:

        @app.workflow(name="parent")
        def parent(x: int) -> list[Any]:
            child = durable.start_child(gated, x)
            said = note(child.id)
            return [child.id, child.workflow, child.position, said, child.result()]

    with app.worker():
        h = client.start(parent, 4)
        kid_id = f"{h.id}:1"
        # The parent ran its step past the start, and now waits for the child, which waits
        # for its signal: neither has ended.
        wait_until(lambda: ("step_completed", 2) in _types(h), what="the step after the start")
        wait_until(lambda: h.info().waiting_for == "children", what="the parent to wait")
        wait_until(lambda: _waiting(client, kid_id) == "signal:go")
        client.signal(kid_id, "go")
        assert h.result(timeout=15) == [kid_id, "gated", 1, f"started {kid_id}", 40]
    assert _types(h).count(("child_started", 1)) == 1
    assert ("child_completed", 1) in _types(h)
    assert [k.id for k in _kids(client, h.id)] == [kid_id]
    assert client.replay(h.id) == [kid_id, "gated", 1, f"started {kid_id}", 40]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_step_after_start_child_finds_the_child_in_the_log(
    app: durable.App, client: durable.Client, is_async: bool
) -> None:
    gated = _gated(app)

    @app.step(name="poke")
    def poke(child_id: str) -> str:
        app.client().signal(child_id, "go")  # the child's row is committed by now
        return client.get(child_id).info().workflow

    if is_async:

        @app.workflow(name="parent")
        async def parent() -> list[Any]:
            kids = [durable.start_child(gated, i) for i in range(3)]
            names = await asyncio.gather(*(poke(k.id) for k in kids))
            return [*names, *[await k.result() for k in kids]]

    else:

        @app.workflow(name="parent")
        def parent() -> list[Any]:
            kids = [durable.start_child(gated, i) for i in range(3)]
            names = [poke(k.id) for k in kids]
            return [*names, *[k.result() for k in kids]]

    with app.worker():
        for _ in range(3):
            h = client.start(parent)
            assert h.result(timeout=15) == ["gated"] * 3 + [0, 10, 20]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_failed_or_cancelled_child_raises_from_result(
    app: durable.App, client: durable.Client, is_async: bool, wait_until: Callable[..., Any]
) -> None:
    @app.workflow(name="broken")
    def broken() -> int:
        raise ValueError("no luck")

    gated = _gated(app)

    if is_async:

        @app.workflow(name="parent")
        async def parent() -> list[str]:
            bad, stopped = durable.start_child(broken), durable.start_child(gated, 1)
            out = []
            for child in (bad, stopped):
                try:
                    await child.result()
                except (durable.RunFailedError, durable.RunCancelledError) as exc:
                    out.append(f"{type(exc).__name__} {exc.run_id == child.id}")
            return out

    else:

        @app.workflow(name="parent")
        def parent() -> list[str]:
            bad, stopped = durable.start_child(broken), durable.start_child(gated, 1)
            out = []
            for child in (bad, stopped):
                try:
                    child.result()
                except (durable.RunFailedError, durable.RunCancelledError) as exc:
                    out.append(f"{type(exc).__name__} {exc.run_id == child.id}")
            return out

    with app.worker():
        h = client.start(parent)
        wait_until(lambda: _waiting(client, f"{h.id}:2") == "signal:go")
        client.cancel(f"{h.id}:2")
        assert h.result(timeout=15) == ["RunFailedError True", "RunCancelledError True"]
    failed = [e for e in h.events() if e.type == "child_failed"]
    assert [(e.position, e.data["error"]["type"]) for e in failed] == [
        (1, "ValueError"),
        (2, "RunCancelledError"),
    ]


def test_a_child_started_by_name_and_one_the_parent_never_waits_for(
    app: durable.App, client: durable.Client, wait_until: Callable[..., Any]
) -> None:
    _gated(app)

    @app.workflow(name="parent")
    def parent() -> str:
        child = durable.start_child("gated", 2)
        return child.id  # returns without waiting: the child goes on by itself

    with app.worker():
        h = client.start(parent)
        kid_id = h.result(timeout=15)
        assert kid_id == f"{h.id}:1"
        kid = client.get(kid_id)
        wait_until(lambda: kid.info().waiting_for == "signal:go")
        assert h.status() is Status.COMPLETED
        client.signal(kid_id, "go")
        assert kid.result(timeout=15) == 20
    assert kid.info().parent_id == h.id


# ---------------------------------------------------------------- wait_first


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_wait_first_returns_the_child_that_ended_first_and_replays_it(
    app: durable.App, client: durable.Client, is_async: bool, wait_until: Callable[..., Any]
) -> None:
    gated = _gated(app)

    @app.workflow(name="quick")
    def quick(x: int) -> int:
        return x + 1

    if is_async:

        @app.workflow(name="parent")
        async def parent() -> list[Any]:
            slow, fast = durable.start_child(gated, 1), durable.start_child(quick, 2)
            first = await durable.wait_first([slow, fast])
            return [first.id, await first.result(), first is fast, await slow.result()]

    else:

        @app.workflow(name="parent")
        def parent() -> list[Any]:
            slow, fast = durable.start_child(gated, 1), durable.start_child(quick, 2)
            first = durable.wait_first([slow, fast])
            return [first.id, first.result(), first is fast, slow.result()]

    with app.worker():
        h = client.start(parent)
        slow_id = f"{h.id}:1"
        wait_until(lambda: any(e.type == "first_finished" for e in h.events()))
        client.signal(slow_id, "go")
        result = h.result(timeout=15)
    assert result == [f"{h.id}:2", 3, True, 10]
    (first,) = [e for e in h.events() if e.type == "first_finished"]
    assert (first.position, first.data) == (3, {"child_id": f"{h.id}:2", "index": 1})
    # The slow child has ended too by now; a replay still picks the one recorded.
    assert client.get(slow_id).status() is Status.COMPLETED
    assert client.replay(h.id) == result


def test_wait_first_counts_a_failed_child_as_ended(
    app: durable.App, client: durable.Client, wait_until: Callable[..., Any]
) -> None:
    _gated(app)

    @app.workflow(name="broken")
    def broken() -> int:
        raise RuntimeError("down")

    @app.workflow(name="parent")
    def parent() -> str:
        slow, bad = durable.start_child("gated", 1), durable.start_child(broken)
        first = durable.wait_first([slow, bad])
        try:
            first.result()
        except durable.RunFailedError as exc:
            return f"{first.workflow} {exc.error_type}: {exc.error_message}"
        return "no error"

    with app.worker():
        h = client.start(parent)
        assert h.result(timeout=15) == "broken RuntimeError: down"
        # The parent ended; the slow child, never waited for, goes on by itself.
        wait_until(lambda: _waiting(client, f"{h.id}:1") == "signal:go")


def test_a_changed_list_given_to_wait_first_does_not_replay(
    make_app: Callable[..., durable.App],
) -> None:
    old = make_app("old")
    _gated(old)

    @old.workflow(name="quick")
    def quick() -> int:
        return 1

    @old.workflow(name="parent")
    def parent() -> int:
        a, b = durable.start_child("quick"), durable.start_child("gated", 1)
        return durable.wait_first([a, b]).result()  # type: ignore[no-any-return]

    client = old.client()
    with old.worker():
        h = client.start(parent)
        assert h.result(timeout=15) == 1
        client.signal(f"{h.id}:2", "go")
        client.get(f"{h.id}:2").result(timeout=15)
    new = make_app("new")
    _gated(new)

    @new.workflow(name="quick")
    def quick_again() -> int:
        return 1

    @new.workflow(name="parent")
    def parent_changed() -> int:
        durable.start_child("quick")
        b = durable.start_child("gated", 1)
        return durable.wait_first([b]).result()  # type: ignore[no-any-return]

    with pytest.raises(durable.NonDeterminismError) as exc:
        new.client().replay(h.id)
    assert exc.value.position == 3
    assert f"{h.id}:1" in str(exc.value)


# ---------------------------------------------------------------- cancel and resume


def test_cancelling_the_parent_cancels_its_children_and_a_resume_starts_none_again(
    app: durable.App, client: durable.Client, wait_until: Callable[..., Any]
) -> None:
    gated = _gated(app)

    @app.workflow(name="parent")
    def parent() -> list[Any]:
        kids = [durable.start_child(gated, i) for i in range(3)]
        out: list[Any] = []
        for kid in kids:
            try:
                out.append(kid.result())
            except durable.RunCancelledError:
                out.append("cancelled")
        return out

    with app.worker():
        h = client.start(parent)
        for i in (1, 2, 3):
            wait_until(lambda i=i: _waiting(client, f"{h.id}:{i}") == "signal:go")
        wait_until(lambda: h.info().waiting_for == "children", what="the parent to wait")
        h.cancel()
        with pytest.raises(durable.RunCancelledError):
            h.result(timeout=15)
        assert {k.status for k in _kids(client, h.id)} == {Status.CANCELLED}
        client.resume(f"{h.id}:2")  # one child goes on; the parent is resumed
        client.resume(h.id)
        wait_until(lambda: _waiting(client, f"{h.id}:2") == "signal:go")
        client.signal(f"{h.id}:2", "go")
        assert h.result(timeout=15) == ["cancelled", 10, "cancelled"]
    assert [k.id for k in _kids(client, h.id)] == [f"{h.id}:{i}" for i in (1, 2, 3)]
    assert [e.position for e in h.events() if e.type == "child_started"] == [1, 2, 3]
    for kid in _kids(client, h.id):
        assert [e.type for e in client.events(kid.id)].count("run_started") == 1


# ---------------------------------------------------------------- mistakes


def test_start_child_and_wait_first_refuse_bad_input_with_clear_errors(
    app: durable.App, client: durable.Client
) -> None:
    gated = _gated(app)

    @app.step(name="peek")
    def peek() -> str:
        try:
            durable.start_child(gated, 1)
        except durable.NotInRunError as exc:
            return str(exc)
        return "started"

    def plain() -> None: ...

    @app.workflow(name="parent")
    def parent() -> list[str]:
        out = [peek()]
        for bad in (plain, "nope", 42):
            try:
                durable.start_child(bad)  # type: ignore[arg-type]
            except (TypeError, durable.UnknownWorkflowError) as exc:
                out.append(f"{type(exc).__name__}: {exc}")
        for args in ([], durable.start_child(gated, 1), [1]):
            try:
                durable.wait_first(args)  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                out.append(f"{type(exc).__name__}: {exc}")
        return out

    with app.worker():
        h = client.start(parent)
        out = h.result(timeout=15)
    assert out[0] == (
        "durable.start_child() can only be called in workflow code (not outside a run, nor "
        "in a step body)"
    )
    assert out[1].startswith("TypeError: durable.start_child() takes a workflow")
    assert out[2] == (
        "UnknownWorkflowError: durable.start_child(): no workflow 'nope' is registered"
    )
    assert out[3].startswith("TypeError: durable.start_child() takes a workflow")
    assert "not int" in out[3]
    assert out[4] == "ValueError: durable.wait_first needs at least one child handle"
    assert out[5].startswith("TypeError: durable.wait_first takes a list of child handles")
    assert out[6].startswith("TypeError: durable.wait_first takes the handles") and "int" in out[6]
    with pytest.raises(durable.NotInRunError):
        durable.start_child(gated, 1)
    with pytest.raises(durable.NotInRunError):
        durable.wait_first([])
    (kid,) = _kids(client, h.id)  # the child started to be given as one handle
    assert kid.id == f"{h.id}:2"  # position 1 is the step; refused starts take none
    client.signal(kid.id, "go")


def test_a_handle_waited_for_in_a_step_body_or_another_run_is_refused(
    app: durable.App, client: durable.Client
) -> None:
    @app.workflow(name="quick")
    def quick() -> int:
        return 1

    held: list[Any] = []

    @app.step(name="wait_inside")
    def wait_inside() -> str:
        try:
            held[0].result()
        except durable.NotInRunError as exc:
            return str(exc)
        return "waited"

    @app.workflow(name="parent")
    def parent() -> list[Any]:
        child = durable.start_child(quick)
        held[:] = [child]
        return [wait_inside(), child.result()]

    @app.workflow(name="other")
    def other() -> str:
        try:
            held[0].result()
        except durable.NotInRunError as exc:
            return str(exc)
        return "waited"

    with app.worker():
        h = client.start(parent)
        said, value = h.result(timeout=15)
        assert value == 1
        said_elsewhere = client.start(other).result(timeout=15)
    refusal = f"child '{h.id}:1': result() can only be called in the workflow code of the run"
    assert said.startswith(refusal) and said_elsewhere.startswith(refusal)


def test_an_async_wait_first_never_awaited_fails_the_run_and_says_so(
    app: durable.App, client: durable.Client
) -> None:
    @app.workflow(name="quick")
    async def quick() -> int:
        return 1

    @app.workflow(name="parent")
    async def parent() -> int:
        child = durable.start_child(quick)
        durable.wait_first([child])  # forgot await
        return await child.result()  # type: ignore[no-any-return]

    with app.worker():
        h = client.start(parent)
        with pytest.raises(durable.RunFailedError) as exc:
            h.result(timeout=15)
    assert "durable.wait_first at position 2" in exc.value.error_message
    assert "await durable.wait_first(...)" in exc.value.error_message
