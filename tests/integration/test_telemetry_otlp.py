"""End to end over OTLP/HTTP: real worker processes export with the official exporter to a
receiver that this test starts on 127.0.0.1, and one of them is killed with SIGKILL mid-run.

The run's spans from both processes share one trace id: the one stored with the run by the
client (a ``start`` span of this process), whatever executed it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.otel import OTel
from harness.processes import Processes
from otlp_receiver import Receiver
from procs.wfapp import make_app

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

WORKER = Path(__file__).resolve().parent / "procs" / "traced_worker.py"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with Receiver() as r:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.endpoint)
        yield r


def test_spans_of_a_killed_and_resumed_run_share_one_trace(
    otel: OTel, receiver: Receiver, processes: Processes, db_url: str, fx: Path
) -> None:
    app = make_app(db_url)
    try:
        (fx / "block").touch()
        handle = app.client().start("three_steps", str(fx))
        start = next(s for s in otel.finished(handle.id) if s.name == "start three_steps")
        trace_id = f"{start.context.trace_id:032x}"

        args = [db_url, "traced-worker", "30", "2"]
        first = processes.python(WORKER, *args, name="first")
        first.wait_for(lambda: (fx / f"b.marker.{first.pid}").exists(), 30, "step_b in the first")
        first.wait_for(
            lambda: any(s["name"] == "step step_a" for s in receiver.received.span_list()),
            15,
            "the first process's step_a span",
        )
        first.kill()
        (fx / "block").unlink()
        # The same id: it reclaims the run at once.
        second = processes.python(WORKER, *args, name="second")
        assert handle.result(timeout=45) is not None
        assert second.terminate(timeout=30) == 0, processes.describe()
    finally:
        app.close()

    spans = [
        s
        for s in receiver.received.span_list()
        if s["attributes"].get("durable.run.id") == handle.id
    ]
    assert {s["trace_id"] for s in spans} == {trace_id}
    pids = {s["resource"]["service.instance.id"] for s in spans}
    assert pids == {str(first.pid), str(second.pid)}, spans
    assert {s["scope"] for s in spans} == {"durable"}

    def names(pid: int) -> list[str]:
        return sorted(s["name"] for s in spans if s["resource"]["service.instance.id"] == str(pid))

    # The first process's run span never ended (SIGKILL); its finished step did.
    assert "step step_a" in names(first.pid)
    assert "three_steps" not in names(first.pid)
    # The second replayed step_a (no span) and ran the rest live.
    assert names(second.pid) == ["step step_b", "step step_c", "three_steps"]
    run = next(s for s in spans if s["name"] == "three_steps")
    assert run["parent_id"] == f"{start.context.span_id:016x}"
    assert run["attributes"]["durable.worker.id"] == "traced-worker"
    assert run["attributes"]["durable.outcome"] == "completed"
    step_b = next(s for s in spans if s["name"] == "step step_b")
    assert step_b["attributes"]["durable.step.position"] == 2
    assert step_b["parent_id"] == run["span_id"]

    metrics = {m["name"]: m for m in receiver.received.metrics}
    completed = metrics["durable.runs.completed"]["points"]
    assert any(
        p["attributes"].get("durable.workflow") == "three_steps" and p["value"] >= 1
        for p in completed
    ), completed
    durations = metrics["durable.step.duration"]["points"]
    assert {p["attributes"]["durable.step.name"] for p in durations} >= {"step_b", "step_c"}
    assert metrics["durable.step.duration"]["kind"] == "histogram"
