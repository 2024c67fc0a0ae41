"""Metrics through the global meter provider (an in-memory reader), and the engine's log
records with the run's fields."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import pytest
from harness.otel import OTel

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
    client.cancel(handle.id)  # already cancelled: not counted again
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
    time.sleep(0.05)  # the runs have waited (at least this long) when the gauges are read
    # A worker of this App that does not serve the queue: the gauges observe the App's log.
    with app.worker(queues=["gauged-empty"]):
        depth = {p.attributes["durable.queue"]: p.value for p in otel.points("durable.queue.depth")}
        age = {
            p.attributes["durable.queue"]: p.value for p in otel.points("durable.queue.oldest_age")
        }
    assert depth["gauged-q"] == 3
    assert age["gauged-q"] >= 0.05  # since the runs were created
    # A queue of the App's workflows with nothing waiting reports 0 (not nothing).
    assert (depth["gauged-empty"], age["gauged-empty"]) == (0, 0.0)
    # No worker of the App runs any more: its log is not observed (an observable gauge reports
    # only what its callbacks observed in this collection).
    queues = {p.attributes["durable.queue"] for p in otel.points("durable.queue.depth")}
    assert "gauged-q" not in queues
    ages = {p.attributes["durable.queue"] for p in otel.points("durable.queue.oldest_age")}
    assert "gauged-q" not in ages


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


def _carries_run(records: list[logging.LogRecord], text: str, run_id: str) -> logging.LogRecord:
    found = [r for r in records if text in r.getMessage()]
    assert found, f"no record with {text!r}"
    for r in found:
        assert r.durable_run_id == run_id  # type: ignore[attr-defined]
    return found[0]


def test_hook_and_listener_errors_carry_the_run_fields(
    app: durable.App, client: durable.Client, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(run_id: str, value: object) -> None:
        raise RuntimeError("hook")

    @app.workflow(name="hooked", on_success=hook)
    def hooked() -> int:
        return 1

    def listener(info: Any) -> None:
        raise RuntimeError("listener")

    app.on(durable.WorkerEvent.COMPLETED, listener)
    caplog.set_level(logging.WARNING, logger="durable")
    with app.worker(worker_id="w-hooks") as embedded:
        worker = embedded._engine  # the engine's worker, to wrap its listener
        inner = worker._listener
        assert inner is not None

        def raising(event: durable.WorkerEvent, row: Any, details: dict[str, Any]) -> None:
            inner(event, row, details)
            if event == durable.WorkerEvent.COMPLETED:
                raise RuntimeError("the worker's listener")

        worker._listener = raising
        handle = client.start(hooked)
        assert handle.result(timeout=20) == 1
    for text in ("hook raised", "worker event listener raised", "listener <function"):
        rec = _carries_run(caplog.records, text, handle.id)
        assert rec.durable_workflow == "hooked"  # type: ignore[attr-defined]
        assert rec.durable_worker_id == "w-hooks"  # type: ignore[attr-defined]


def test_a_lost_lease_is_logged_with_the_run_fields(
    app: durable.App, caplog: pytest.LogCaptureFixture
) -> None:
    from durable.engine.worker import Worker

    class LosingStore:
        """Answers a heartbeat: every lease held is lost."""

        def __init__(self) -> None:
            self.worker: Worker | None = None

        def heartbeat(self, worker_id: str, timeout: float, held: dict[str, int]) -> list[str]:
            assert self.worker is not None
            self.worker._hb_stop.set()
            return list(held)

    store = LosingStore()
    worker = Worker(store, app.registry, app.codec, worker_id="w-hb", lease_timeout=0.03)  # type: ignore[arg-type]
    store.worker = worker
    worker._held["lost-run"] = 1
    caplog.set_level(logging.WARNING, logger="durable.engine.worker")
    worker._heartbeats()
    rec = _carries_run(caplog.records, "lease of run lost-run lost", "lost-run")
    assert rec.durable_worker_id == "w-hb"  # type: ignore[attr-defined]


def test_metrics_enabled_only_with_a_provider_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import metrics
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.metrics._internal import _ProxyMeterProvider
    from opentelemetry.sdk.metrics import MeterProvider

    from durable.telemetry import metrics_enabled

    for provider, on in [
        (_ProxyMeterProvider(), False),
        (NoOpMeterProvider(), False),
        (MeterProvider(), True),
    ]:
        monkeypatch.setattr(metrics, "get_meter_provider", lambda p=provider: p)
        assert metrics_enabled() is on, provider


def test_nothing_is_done_per_step_when_telemetry_is_off(
    app: durable.App, client: durable.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import durable.telemetry.core as core
    import durable.telemetry.run as run
    from durable.telemetry.step import StepTelemetry

    made: list[str] = []

    class Counted(StepTelemetry):
        __slots__ = ()

        def __init__(self, *args: Any) -> None:
            made.append(args[1])
            super().__init__(*args)

    monkeypatch.setattr(run, "StepTelemetry", Counted)
    monkeypatch.setattr(core, "tracing_enabled", lambda: False)

    @app.step(name="unobserved_step")
    def unobserved_step() -> int:
        return 1

    @app.workflow(name="unobserved")
    def unobserved() -> int:
        return unobserved_step() + unobserved_step()

    step_log = logging.getLogger("durable.engine.step")
    level = step_log.level
    step_log.setLevel(logging.WARNING)
    try:
        monkeypatch.setattr(core, "metrics_enabled", lambda: False)
        with app.worker():
            assert client.start(unobserved).result(timeout=20) == 2
        assert made == []
        # Metrics on: each live step is observed (its duration recorded).
        monkeypatch.setattr(core, "metrics_enabled", lambda: True)
        with app.worker():
            assert client.start(unobserved).result(timeout=20) == 2
        assert made == ["unobserved_step", "unobserved_step"]
    finally:
        step_log.setLevel(level)
