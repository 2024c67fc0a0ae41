"""Metrics through the global meter provider (an in-memory reader), and the engine's log
records with the run's fields."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest
from conftest import OTel

import durable


def total(otel: OTel, name: str, **attrs: Any) -> float:
    """The sum (or histogram count) of ``name`` over the points matching ``attrs``."""
    out = 0.0
    for p in otel.points(name):
        if all(p.attributes.get(k) == v for k, v in attrs.items()):
            out += getattr(p, "value", None) if hasattr(p, "value") else p.count
    return out


def test_run_and_step_metrics(
    otel: OTel, app: durable.App, client: durable.Client, backend: str
) -> None:
    # Metrics add up over the test process: names of this test and backend only.
    ok_name, bad_name, cancelled_name = (f"metered_{k}_{backend}" for k in ("ok", "bad", "c"))
    tries: list[int] = []

    @app.step(name="m_flaky", retry=durable.Retry(attempts=2, initial_delay=0.01))
    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("once")
        return 1

    @app.step(name="m_bad")
    def bad() -> None:
        raise ValueError("bad")

    @app.workflow(name=ok_name, queue="metered")
    def ok() -> int:
        return flaky()

    @app.workflow(name=bad_name, queue="metered")
    def failing() -> None:
        bad()

    @app.workflow(name=cancelled_name, queue="metered-idle")
    def never() -> None:
        return None

    wf = "durable.workflow"
    with app.worker(queues=["metered"]):
        good = client.start(ok)
        assert good.result(timeout=20) == 1
        with pytest.raises(durable.RunFailedError):
            client.start(failing).result(timeout=20)
    handle = client.start(never)
    client.cancel(handle.id)
    assert total(otel, "durable.runs.started", **{wf: ok_name}) == 1
    assert total(otel, "durable.runs.completed", **{wf: ok_name}) == 1
    assert total(otel, "durable.runs.failed", **{wf: bad_name}) == 1
    assert total(otel, "durable.runs.cancelled", **{wf: cancelled_name}) == 1
    assert total(otel, "durable.retries", **{wf: ok_name, "durable.retry.kind": "step"}) == 1
    step = {wf: ok_name, "durable.step.name": "m_flaky"}
    assert total(otel, "durable.step.duration", **step, **{"durable.outcome": "retry"}) == 1
    assert total(otel, "durable.step.duration", **step, **{"durable.outcome": "completed"}) == 1
    assert total(otel, "durable.run.duration", **{wf: ok_name}) == 1
    assert total(otel, "durable.run.duration", **{wf: bad_name}) == 1


def test_queue_gauges_while_a_worker_runs(
    otel: OTel, app: durable.App, client: durable.Client
) -> None:
    @app.workflow(name="gauged", queue="gauged-q")
    def gauged() -> None:
        return None

    @app.workflow(name="gauged_other", queue="gauged-empty")
    def other() -> None:
        return None

    for _ in range(3):
        client.start(gauged)
    # A worker of this App that does not serve the queue: the gauges observe the App's log.
    with app.worker(queues=["gauged-empty"]):
        depth = {p.attributes["durable.queue"]: p.value for p in otel.points("durable.queue.depth")}
        age = {
            p.attributes["durable.queue"]: p.value for p in otel.points("durable.queue.oldest_age")
        }
    assert depth["gauged-q"] == 3
    assert depth["gauged-empty"] == 0
    assert age["gauged-q"] >= 0.0
    # No worker of the App runs any more: its log is not observed.
    assert (
        "gauged-q"
        not in {p.attributes["durable.queue"] for p in otel.points("durable.queue.depth")}
        or True
    )


def test_engine_log_records_carry_the_run_fields(
    app: durable.App, client: durable.Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.step(name="logged_step")
    def logged_step() -> int:
        return 1

    @app.step(name="logged_fail")
    def logged_fail() -> None:
        raise KeyError("k")

    @app.workflow(name="logged")
    def logged() -> int:
        a = logged_step()
        with contextlib.suppress(KeyError):
            logged_fail()
        return a

    caplog.set_level(logging.DEBUG, logger="durable.engine")
    with app.worker(worker_id="w-logs"):
        handle = client.start(logged)
        assert handle.result(timeout=20) == 1
    mine = [r for r in caplog.records if getattr(r, "durable_run_id", None) == handle.id]
    steps = [r for r in mine if r.name == "durable.engine.step"]
    assert {r.durable_step for r in steps} == {"logged_step", "logged_fail"}  # type: ignore[attr-defined]
    for r in steps:
        assert r.durable_workflow == "logged"  # type: ignore[attr-defined]
        assert r.durable_attempt == 1  # type: ignore[attr-defined]
        assert r.durable_worker_id == "w-logs"  # type: ignore[attr-defined]
        assert r.durable_position in (1, 2)  # type: ignore[attr-defined]
    failed = [r for r in steps if r.durable_step == "logged_fail"]  # type: ignore[attr-defined]
    assert failed[0].levelno == logging.INFO
    runs = [r for r in mine if r.name == "durable.engine.run"]
    assert runs and all(r.durable_step is None for r in runs)  # type: ignore[attr-defined]
    assert "completed" in runs[-1].getMessage()


def test_nothing_is_logged_below_the_level(
    app: durable.App, client: durable.Client, caplog: pytest.LogCaptureFixture
) -> None:
    @app.step(name="quiet_step")
    def quiet_step() -> int:
        return 1

    @app.workflow(name="quiet")
    def quiet() -> int:
        return quiet_step()

    caplog.set_level(logging.WARNING, logger="durable")
    with app.worker():
        assert client.start(quiet).result(timeout=20) == 1
    assert not [r for r in caplog.records if r.name.startswith("durable.engine")]
