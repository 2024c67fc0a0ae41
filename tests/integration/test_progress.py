"""A run's progress and time left (``RunInfo.progress``, ``.eta``, ``.stage``, ``.step``),
derived from the runs row the log keeps with every append, on SQLite and Postgres."""

from __future__ import annotations

import threading

import pytest

import durable
from durable import Status


def _three_steps(app: durable.App, entered: threading.Event, release: threading.Event):
    @app.step(name="first")
    def first(i: int) -> int:
        return i + 1

    @app.step(name="middle")
    def middle(i: int) -> int:
        durable.progress(0.5)
        entered.set()
        assert release.wait(20)
        return i + 1

    @app.step(name="last")
    def last(i: int) -> int:
        return i + 1

    @app.workflow()
    def three(i: int) -> int:
        with durable.stage("work"):
            return last(middle(first(i)))

    return three


def _in_middle(h, wait_until) -> durable.RunInfo:
    def there():
        info = h.info()
        return info if info.step == "middle" and info.steps_completed == 1 else None

    return wait_until(there, what=lambda: f"the run reports step middle: {h.info()}")


def test_progress_is_measured_against_the_last_completed_run(app, client, wait_until):
    entered, release = threading.Event(), threading.Event()
    three = _three_steps(app, entered, release)
    pending = client.start(three, 0, delay=3600)
    before = pending.info()
    assert before.progress is None and before.eta is None and before.step is None
    with app.worker():
        h1 = client.start(three, 1)
        assert entered.wait(10)
        info = _in_middle(h1, wait_until)
        # No run of the workflow completed yet: nothing to measure against.
        assert info.progress == 0.0 and info.eta is None
        assert info.stage == "work" and info.status is Status.RUNNING
        release.set()
        assert h1.result(timeout=10) == 4
        done = h1.info()
        assert (done.progress, done.eta, done.step) == (1.0, 0.0, None)
        assert done.steps_completed == 3

        entered.clear()
        release.clear()
        h2 = client.start(three, 2)
        assert entered.wait(10)
        wait_until(lambda: h2.info().progress == pytest.approx(0.5), what="progress 1.5/3")
        info = _in_middle(h2, wait_until)
        assert info.eta is not None and info.eta >= 0.0
        listed = {i.id: i for i in client.list_runs(workflow=three)}
        assert listed[h2.id].progress == pytest.approx(0.5) and listed[h2.id].step == "middle"
        assert listed[pending.id].progress is None
        release.set()
        assert h2.result(timeout=10) == 5
    assert h2.info().progress == 1.0


def test_run_level_progress_wins_and_a_sleeping_run_is_between_steps(app, client, wait_status):
    @app.step()
    def one() -> int:
        return 1

    @app.workflow()
    def reported() -> int:
        one()
        durable.progress(0.25)
        durable.sleep(3600)
        return 2

    with app.worker():
        h = client.start(reported)
        wait_status(h, Status.SLEEPING)
        info = h.info()
        assert info.progress == 0.25
        assert info.step is None and info.eta is not None and info.eta > 0.0


def test_a_failed_run_keeps_its_progress_and_has_no_eta(app, client):
    @app.step()
    def boom() -> None:
        durable.progress(0.5)
        raise ValueError("no")

    @app.workflow()
    def failing() -> None:
        boom()

    with app.worker():
        h = client.start(failing)
        with pytest.raises(durable.RunFailedError):
            h.result(timeout=10)
    info = h.info()
    assert info.status is Status.FAILED
    assert info.progress == 0.0 and info.eta is None and info.step is None
