"""Per-run options (``client.start(timeout=, retry=)``, and ``start_many``): stored with the
run, applied by the worker over the workflow's own, refused before anything is written when
out of range; on SQLite and Postgres, but for the run timeouts, measured on the virtual clock
of ``durable.testing`` (once, on its SQLite log)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

import durable
from durable import InvalidOptionError, Retry, RunFailedError, Status


def _no_runs(client: durable.Client) -> None:
    assert client.list_runs() == []


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": math.inf},
        {"timeout": math.nan},
        {"timeout": "soon"},
        {"timeout": True},
        {"timeout": dt.timedelta(seconds=-5)},
        {"retry": 3},
        {"retry": "always"},
        {"retry": Retry(attempts=2, max_delay=math.inf)},
    ],
)
def test_out_of_range_options_are_refused_before_anything_is_written(app, client, db_url, options):
    @app.workflow()
    def flow() -> int:
        return 1

    with pytest.raises(InvalidOptionError) as err:
        client.start(flow, **options)
    assert isinstance(err.value, ValueError) and isinstance(err.value, durable.DurableError)
    with pytest.raises(InvalidOptionError):
        client.start_many(flow, [(), ()], **options)
    with durable.Client(db_url) as code_free, pytest.raises(InvalidOptionError):
        code_free.start("by-name", **options)
    _no_runs(client)


def test_a_run_timeout_overrides_the_workflows(virtual_app, durable_env, wait_status):
    # On the virtual clock (durable.testing): the run's ten minutes end before the
    # workflow's hour, and the test does not wait for either.
    @virtual_app.workflow(timeout=3600)
    def slow() -> str:
        durable.sleep(3600)
        return "late"

    t = durable_env(virtual_app)
    h = t.client.start(slow, timeout=dt.timedelta(minutes=10))
    with pytest.raises(RunFailedError) as err:
        h.result(timeout=20)
    assert err.value.error_type == "TimeoutError"
    assert "600.0s" in err.value.error_message
    assert 600 - 5 <= t.clock.skipped < 3600
    other = t.client.start(slow)
    wait_status(other, Status.SLEEPING)
    assert other.status() is Status.SLEEPING
    assert t.client._store.get_run(other.id).timeout == 3600


def test_a_run_timeout_counts_from_the_first_start_and_applies_by_name(virtual_app, durable_env):
    @virtual_app.workflow(name="sleepy")
    def sleepy() -> str:
        durable.sleep(3600)
        return "late"

    t = durable_env(virtual_app)
    with durable.Client(t.database) as code_free:
        # A client without the workflow's code: the run's own timeout still applies. (The
        # test waits through the env's client: its result() is what lets the clock skip.)
        h = code_free.start("sleepy", timeout=600, delay=1800)
        with pytest.raises(RunFailedError) as err:
            t.client.result(h.id, timeout=20)
        assert err.value.error_type == "TimeoutError"
        row = code_free._store.get_run(h.id)
        assert row.started_at is not None and row.started_at >= row.created_at + 1800
        assert row.deadline_at == pytest.approx(row.started_at + 600, abs=0.001)


def test_a_run_retry_overrides_the_workflows(app, client):
    tries: list[int] = []

    @app.workflow(retry=Retry(attempts=1))
    def flaky(n: int) -> int:
        tries.append(durable.info().attempt)
        if len(tries) < n:
            raise ConnectionError("not yet")
        return len(tries)

    with app.worker():
        with pytest.raises(RunFailedError):
            client.start(flaky, 2).result(timeout=20)
        assert tries == [1]
        tries.clear()
        fast = Retry(attempts=3, initial_delay=0.0, jitter=False)
        assert client.start(flaky, 3, retry=fast).result(timeout=20) == 3
        assert tries == [1, 2, 3]


def test_a_run_retry_names_its_non_retryable_types(app, client):
    tries: list[int] = []

    @app.workflow()
    def picky() -> None:
        tries.append(1)
        raise KeyError("gone")

    with app.worker():
        policy = Retry(attempts=5, initial_delay=0.0, non_retryable=(LookupError,))
        with pytest.raises(RunFailedError) as err:
            client.start(picky, retry=policy).result(timeout=20)
    assert err.value.error_type == "KeyError"
    assert tries == [1]


def test_start_many_stores_the_options_of_every_run(app, client):
    tries: list[int] = []

    @app.workflow()
    def once(i: int) -> int:
        tries.append(i)
        if tries.count(i) < 2:
            raise ConnectionError("again")
        return i

    with app.worker():
        hs = client.start_many(
            once, [1, 2], retry=Retry(attempts=2, initial_delay=0.0), timeout=600
        )
        assert [h.result(timeout=20) for h in hs] == [1, 2]
    assert sorted(tries) == [1, 1, 2, 2]
    assert {client._store.get_run(h.id).timeout for h in hs} == {600.0}
