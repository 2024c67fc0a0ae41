"""Traces of runs through the global tracer provider (an SDK one with an in-memory exporter):
a run span per execution, stage and live step-attempt spans, events, errors, one trace per run
across executions, children nested under their parent."""

from __future__ import annotations

from typing import Any

import pytest
from harness.otel import OTel
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import durable


def by_name(spans: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


def test_spans_of_a_run(otel: OTel, app: durable.App, client: durable.Client) -> None:
    @app.step(name="fetch")
    def fetch(n: int) -> int:
        durable.progress(0.5)
        return n + 1

    @app.step(name="save")
    def save(n: int) -> int:
        return n * 2

    @app.workflow(name="traced_pipeline", queue="traced")
    def pipeline(n: int) -> int:
        with durable.stage("load"):
            a = fetch(n)
            durable.message("loaded", rows=a)
        return save(a)

    with app.worker(worker_id="w-traces"):
        handle = client.start(pipeline, 1)
        assert handle.result(timeout=20) == 4
    spans = by_name(otel.finished(handle.id))
    assert set(spans) == {
        "start traced_pipeline",
        "traced_pipeline",
        "stage load",
        "step fetch",
        "step save",
    }
    start, run = spans["start traced_pipeline"][0], spans["traced_pipeline"][0]
    stage, fetch_span, save_span = (
        spans["stage load"][0],
        spans["step fetch"][0],
        spans["step save"][0],
    )
    assert {s.context.trace_id for group in spans.values() for s in group} == {
        start.context.trace_id
    }
    assert run.parent.span_id == start.context.span_id
    assert stage.parent.span_id == run.context.span_id
    assert fetch_span.parent.span_id == stage.context.span_id
    assert save_span.parent.span_id == run.context.span_id
    assert run.attributes["durable.workflow"] == "traced_pipeline"
    assert run.attributes["durable.queue"] == "traced"
    assert run.attributes["durable.worker.id"] == "w-traces"
    assert run.attributes["durable.outcome"] == "completed"
    assert fetch_span.attributes["durable.step.name"] == "fetch"
    assert fetch_span.attributes["durable.step.position"] == 1
    assert fetch_span.attributes["durable.step.attempt"] == 1
    assert fetch_span.attributes["durable.stage"] == "load"
    assert save_span.attributes["durable.step.position"] == 2
    assert [e.name for e in fetch_span.events] == ["progress"]
    assert fetch_span.events[0].attributes["durable.progress"] == 0.5
    assert [e.name for e in stage.events] == ["message"]
    assert run.status.status_code == StatusCode.UNSET


def test_a_failure_is_recorded_with_error_status(
    otel: OTel, app: durable.App, client: durable.Client
) -> None:
    @app.step(name="boom")
    def boom() -> None:
        raise ValueError("no luck")

    @app.workflow(name="traced_failing")
    def failing() -> None:
        boom()

    with app.worker():
        handle = client.start(failing)
        with pytest.raises(durable.RunFailedError):
            handle.result(timeout=20)
    spans = by_name(otel.finished(handle.id))
    step, run = spans["step boom"][0], spans["traced_failing"][0]
    for span in (step, run):
        assert span.status.status_code == StatusCode.ERROR
        exc = [e for e in span.events if e.name == "exception"]
        assert exc and exc[0].attributes["exception.type"] == "ValueError"
        assert "no luck" in exc[0].attributes["exception.message"]
    assert step.attributes["durable.outcome"] == "failed"
    assert run.attributes["durable.outcome"] == "failed"


def test_retries_and_resumes_share_one_trace_and_replayed_steps_have_no_span(
    otel: OTel, app: durable.App, client: durable.Client
) -> None:
    tries: list[int] = []

    @app.step(name="first")
    def first() -> int:
        return 1

    @app.step(name="flaky", retry=durable.Retry(attempts=3, initial_delay=0.05))
    def flaky() -> int:
        tries.append(1)
        if len(tries) < 2:
            raise RuntimeError("once")
        return 2

    @app.workflow(name="traced_resumes")
    def resumes() -> int:
        a = first()
        durable.sleep(0.1)
        return a + flaky()

    with app.worker():
        handle = client.start(resumes)
        assert handle.result(timeout=20) == 3
    spans = by_name(otel.finished(handle.id))
    runs = spans["traced_resumes"]
    assert len(runs) >= 3  # before the sleep, after it, after the retry's backoff
    start = spans["start traced_resumes"][0]
    assert {r.parent.span_id for r in runs} == {start.context.span_id}
    assert {r.context.trace_id for r in runs} == {start.context.trace_id}
    assert len(spans["step first"]) == 1  # replayed in the later executions: no span
    flaky_spans = sorted(spans["step flaky"], key=lambda s: s.attributes["durable.step.attempt"])
    assert [s.attributes["durable.step.attempt"] for s in flaky_spans] == [1, 2]
    assert [s.attributes["durable.outcome"] for s in flaky_spans] == ["retry", "completed"]
    assert sorted(r.attributes["durable.outcome"] for r in runs)[-1] == "suspended"
    assert [r.attributes["durable.outcome"] for r in runs].count("completed") == 1


def test_a_child_run_nests_under_its_parent(
    otel: OTel, app: durable.App, client: durable.Client
) -> None:
    @app.step(name="leaf")
    def leaf(n: int) -> int:
        return n

    @app.workflow(name="traced_child")
    def child(n: int) -> int:
        return leaf(n)

    @app.workflow(name="traced_parent")
    def parent(n: int) -> int:
        with durable.stage("fan"):
            return int(child(n)) + 1

    with app.worker():
        handle = client.start(parent, 5)
        assert handle.result(timeout=20) == 6
    spans = otel.finished()
    mine = [s for s in spans if s.context.trace_id == otel.finished(handle.id)[0].context.trace_id]
    named = by_name(mine)
    call = named["start traced_child"][0]
    assert call.parent.span_id == named["stage fan"][0].context.span_id
    child_runs = named["traced_child"]
    assert child_runs and {c.parent.span_id for c in child_runs} == {call.context.span_id}
    assert named["step leaf"][0].parent.span_id == child_runs[0].context.span_id


def test_start_inside_a_span_links_the_run_to_it(
    otel: OTel, app: durable.App, client: durable.Client
) -> None:
    @app.workflow(name="traced_requested")
    def requested() -> int:
        return 1

    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as request:
        handle = client.start(requested)
    with app.worker():
        assert handle.result(timeout=20) == 1
    start = by_name(otel.finished(handle.id))["start traced_requested"][0]
    assert start.parent.span_id == request.get_span_context().span_id
    assert start.context.trace_id == request.get_span_context().trace_id


def test_async_workflows_are_traced(otel: OTel, app: durable.App, client: durable.Client) -> None:
    import asyncio

    @app.step(name="aleaf")
    async def aleaf(n: int) -> int:
        await asyncio.sleep(0)
        return n

    @app.workflow(name="traced_async")
    async def flow() -> int:
        values = await asyncio.gather(aleaf(1), aleaf(2))
        return sum(values)

    with app.worker():
        handle = client.start(flow)
        assert handle.result(timeout=20) == 3
    spans = by_name(otel.finished(handle.id))
    run = spans["traced_async"][0]
    assert sorted(s.attributes["durable.step.position"] for s in spans["step aleaf"]) == [1, 2]
    assert {s.parent.span_id for s in spans["step aleaf"]} == {run.context.span_id}


def test_user_spans_in_a_step_nest_under_the_step(
    otel: OTel, app: durable.App, client: durable.Client
) -> None:
    tracer = trace.get_tracer("user")

    @app.step(name="calls_out")
    def calls_out() -> int:
        with tracer.start_as_current_span("GET /api"):
            return 1

    @app.workflow(name="traced_user_spans")
    def flow() -> int:
        return calls_out()

    with app.worker():
        handle = client.start(flow)
        assert handle.result(timeout=20) == 1
    step = by_name(otel.finished(handle.id))["step calls_out"][0]
    user = [s for s in otel.finished() if s.name == "GET /api"]
    assert user and user[-1].parent.span_id == step.context.span_id
