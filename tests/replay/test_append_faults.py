"""One failed append that is not a crash: the worker lives on and later appends succeed.

``durable.now()/random()/uuid4()`` and ``durable.sleep()`` record their outcome with a
fire-and-forget append (``RunState.emit``), whose result nobody reads. When that one append
fails (a database error that outlasts the committer's retries) and the run's next append
succeeds, the run goes on with a value, or past a sleep, that its journal does not hold:
the journal has a hole at that position and the run's result depends on a value no replay can
return (GUARANTEES.md G4: "each outcome event ... once recorded is what every later replay
returns"; G3: the runs row equals the fold of the journal).

What the engine owes here: nothing of the run is written past the lost append; the run is
dropped and, once its lease expires, taken over and finished from its journal, which then
replays to its result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness.faults import Call, FaultyStore, use_store

import durable
from durable.errors import StoreError
from durable.log.store import AppendResult

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]


class FailOneAppend:
    """An ``around`` hook of ``append``: fails, once, the append request that carries an
    event of ``event_type`` (with a non-transient error, as after the committer gave up); the
    other requests of the same call are written, except later ones of the same run (the
    store's own rule)."""

    def __init__(self, event_type: str) -> None:
        self._type = event_type
        self.failed = False

    def __call__(self, call: Call, append: Callable[..., list[AppendResult]]) -> Any:
        out: list[AppendResult] = []
        broken: set[str] = set()
        for r in call.arg(0, "requests"):
            if r.run_id in broken:  # as the store does: never past a failed append of a run
                out.append(AppendResult(ok=False, error=StoreError("an earlier append failed")))
            elif not self.failed and any(e.type == self._type for e in r.events):
                self.failed = True
                broken.add(r.run_id)
                out.append(AppendResult(ok=False, error=StoreError("disk I/O error")))
            else:
                out.extend(append([r]))
        return out


def _holes(events: list[durable.LogEvent]) -> list[int]:
    """Positions below the highest recorded one that have no event at all."""
    positions = {e.position for e in events if e.position is not None}
    top = max(positions, default=0)
    return [p for p in range(1, top + 1) if p not in positions]


def _run(tmp_path: Path, event_type: str, body: Any) -> tuple[durable.App, str, Any]:
    # A short lease: a run the worker dropped is taken over (by the same worker) quickly.
    app = durable.App(
        "faults", database=f"sqlite:///{tmp_path}/f.db", poll_interval=0.05, lease_timeout=1.0
    )
    wf = body(app)
    client = app.client()
    fault = FailOneAppend(event_type)
    with use_store(app, FaultyStore(app.store, around={"append": fault})):
        h = client.start(wf)
        outcome: Any
        with app.worker(worker_id="w1"):
            try:
                outcome = h.result(timeout=20)
            except (TimeoutError, durable.RunFailedError) as exc:
                outcome = exc
    assert fault.failed, "the fault was never injected"
    return app, h.id, outcome


def test_a_lost_value_recorded_append_does_not_leave_a_hole(tmp_path: Path) -> None:
    def body(app: durable.App) -> Any:
        @app.step
        def double(v: float) -> float:
            return v * 2

        @app.workflow
        def wf() -> list[float]:
            v = durable.random()
            return [v, double(v)]

        return wf

    app, run_id, outcome = _run(tmp_path, "value_recorded", body)
    try:
        client = app.client()
        events = client.get(run_id).events()
        assert isinstance(outcome, list), outcome  # dropped, then taken over and completed
        # The journal holds the value the run returned.
        assert _holes(events) == [], [(e.type, e.position) for e in events]
        assert client.replay(run_id) == outcome
        assert outcome[1] == outcome[0] * 2
    finally:
        app.close()


def test_a_lost_sleep_fired_append_does_not_leave_a_hole(tmp_path: Path) -> None:
    def body(app: durable.App) -> Any:
        @app.step
        def one() -> int:
            return 1

        @app.workflow
        def wf() -> int:
            durable.sleep(0)
            return one()

        return wf

    app, run_id, outcome = _run(tmp_path, "sleep_fired", body)
    try:
        client = app.client()
        events = client.get(run_id).events()
        assert outcome == 1
        fired = [e.position for e in events if e.type == "sleep_fired"]
        assert fired == [1], [(e.type, e.position) for e in events]
        assert client.replay(run_id) == 1
    finally:
        app.close()
