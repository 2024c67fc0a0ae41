"""The public surface of ``durable``: ``__all__`` pinned, and every name API.md uses, in shape.

A failure here means a change to the contract of /work/shared/design/API.md (or a new public
name): update this file deliberately, never to make it pass.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from typing import Any

import pytest

import durable

PUBLIC = [
    "App",
    "AsyncClient",
    "AsyncRunHandle",
    "CancelOutcome",
    "CheckReport",
    "ChildHandle",
    "Client",
    "Consumer",
    "CorruptJournalError",
    "DuplicateRunError",
    "DurableError",
    "EmbeddedWorker",
    "EventType",
    "IdConflictError",
    "InvalidArgumentError",
    "InvalidOptionError",
    "LeaseLostError",
    "LogEvent",
    "LogSchemaError",
    "NonDeterminismError",
    "NotInRunError",
    "PayloadTooLargeError",
    "PermanentError",
    "PoolProcessDiedError",
    "QueueConfig",
    "QueueFullError",
    "ResourceError",
    "Retention",
    "Retry",
    "RunCancelledError",
    "RunCheck",
    "RunFailedError",
    "RunHandle",
    "RunInfo",
    "RunNotFoundError",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "SequenceFailure",
    "SerializationError",
    "Status",
    "StepFailedError",
    "StepOutputs",
    "StoreError",
    "UnknownWorkflowError",
    "WorkerEvent",
    "WorkerEventInfo",
    "WorkerInfo",
    "WorkflowCheck",
    "WorkflowStats",
    "cancelled",
    "check_cancelled",
    "deprecate_patch",
    "in_run",
    "info",
    "message",
    "now",
    "output",
    "patched",
    "progress",
    "random",
    "resource",
    "sleep",
    "stage",
    "start_child",
    "uuid4",
    "wait_first",
    "wait_signal",
]


def params(fn: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def default(fn: Any, name: str) -> Any:
    return params(fn)[name].default


def test_all_is_pinned() -> None:
    assert sorted(durable.__all__) == PUBLIC
    assert len(set(durable.__all__)) == len(durable.__all__)
    for name in durable.__all__:
        assert hasattr(durable, name), name


def test_every_public_name_has_a_docstring() -> None:
    missing = [n for n in durable.__all__ if not (inspect.getdoc(getattr(durable, n)) or "")]
    assert missing == []


def _public_methods(cls: type) -> list[str]:
    return [n for n, _ in inspect.getmembers(cls) if not n.startswith("_") and n in cls.__dict__]


@pytest.mark.parametrize(
    "cls",
    [
        "App",
        "Client",
        "AsyncClient",
        "RunHandle",
        "AsyncRunHandle",
        "Retry",
        "EmbeddedWorker",
        "Consumer",
        "ChildHandle",
    ],
)
def test_every_public_method_has_a_docstring(cls: str) -> None:
    c = getattr(durable, cls)
    missing = [
        n
        for n in _public_methods(c)
        if callable(getattr(c, n)) and not (inspect.getdoc(getattr(c, n)) or "")
    ]
    assert missing == []


# ---------------------------------------------------------------- defining work


def test_app_constructor() -> None:
    p = params(durable.App)
    assert list(p)[:2] == ["name", "database"]
    assert p["database"].default is None
    assert "lease_timeout" in p
    assert p["version"].default is None and p["version"].kind is inspect.Parameter.KEYWORD_ONLY


def test_app_methods() -> None:
    for name in ("workflow", "step", "sequence", "queue", "on", "client", "worker", "run_worker"):
        assert callable(getattr(durable.App, name, None)), name
    wf = params(durable.App.workflow)
    for name, value in {
        "name": None,
        "queue": "default",
        "timeout": None,
        "retry": None,
        "on_success": None,
        "on_error": None,
    }.items():
        assert wf[name].default == value, name
    st = params(durable.App.step)
    assert {n: st[n].default for n in ("name", "retry", "timeout")} == dict.fromkeys(
        ("name", "retry", "timeout")
    )
    assert list(params(durable.App.sequence))[1:3] == ["name", "steps"]
    sq = params(durable.App.sequence)
    for name in ("on_success", "on_error", "retry", "timeout", "queue"):
        assert sq[name].default is None, name
    assert [f.name for f in dataclasses.fields(durable.SequenceFailure)] == [
        "sequence",
        "step",
        "error_type",
        "message",
        "run_id",
        "attempt",
    ]
    q = params(durable.App.queue)
    assert {"name", "concurrency", "rate_limit"} <= set(q)
    assert list(params(durable.App.on))[1:] == ["event", "fn", "workflow", "queue"]
    for fn in (durable.App.worker, durable.App.run_worker):
        assert default(fn, "queues") is None
        assert default(fn, "concurrency") == 16
    c = params(durable.App.consumer)
    assert list(c)[1] == "queue"
    assert {n: c[n].default for n in ("retry", "timeout", "on_success", "on_error")} == (
        dict.fromkeys(("retry", "timeout", "on_success", "on_error"))
    )
    assert list(params(durable.App.on_worker_start))[1:] == ["fn"]
    assert list(params(durable.App.on_worker_stop))[1:] == ["fn"]


def test_the_consumer_base_has_do_nothing_hooks() -> None:
    base = durable.Consumer()
    base.setup()
    base.teardown()
    assert base.is_permanent(ValueError("x")) is False
    for name in ("setup", "teardown", "is_permanent", "on_event"):
        assert inspect.getdoc(getattr(durable.Consumer, name)), name
    assert not hasattr(durable.Consumer, "process")  # each consumer defines its own


def test_decorators_keep_names_and_registering_writes_nothing(tmp_path: Any) -> None:
    app = durable.App("t", database=f"sqlite:///{tmp_path}/t.db")

    @app.step()
    def charge(order_id: str) -> int:
        return 1

    @app.workflow()
    def checkout(order_id: str) -> int:
        return charge(order_id)

    assert checkout.__name__ == "checkout" and charge.__name__ == "charge"
    assert charge("o") == 1  # outside a workflow, a step is a plain call
    assert not (tmp_path / "t.db").exists()


def test_retry_defaults() -> None:
    r = durable.Retry()
    assert (r.attempts, r.initial_delay, r.backoff, r.max_delay, r.jitter, r.non_retryable) == (
        3,
        1.0,
        2.0,
        60.0,
        True,
        (),
    )
    assert [f.name for f in dataclasses.fields(durable.Retry)] == [
        "attempts",
        "initial_delay",
        "backoff",
        "max_delay",
        "jitter",
        "non_retryable",
        "retry_if",
    ]
    assert r.retry_if is None
    custom = durable.Retry(attempts=5, initial_delay=0.5, backoff=2.0, max_delay=30.0)
    assert custom.attempts == 5


def test_in_run_functions() -> None:
    for name in ("stage", "progress", "message", "output", "sleep", "now", "random", "uuid4"):
        assert callable(getattr(durable, name)), name
    assert list(params(durable.wait_signal)) == ["name", "timeout"]
    assert list(params(durable.patched)) == ["change_id"]
    assert list(params(durable.deprecate_patch)) == ["change_id"]
    assert default(durable.wait_signal, "timeout") is None
    assert list(params(durable.start_child)) == ["workflow", "args", "kwargs"]
    assert params(durable.start_child)["workflow"].kind is inspect.Parameter.POSITIONAL_ONLY
    assert list(params(durable.wait_first)) == ["children"]
    for name in ("id", "workflow", "position", "result"):
        assert hasattr(durable.ChildHandle, name), name
    assert callable(durable.ChildHandle.result)
    assert durable.in_run() is False
    with pytest.raises(durable.NotInRunError):
        durable.info()


# ---------------------------------------------------------------- starting and managing runs

CLIENT_METHODS = [
    "start",
    "get",
    "list_runs",
    "cancel",
    "resume",
    "fork",
    "replay",
    "export_run",
    "check",
    "signal",
    "workers",
    "signal_with_start",
    "cancel_many",
    "resume_many",
]
HANDLE_METHODS = ["status", "result", "info", "outputs", "events", "cancel"]


def test_client_methods() -> None:
    for name in CLIENT_METHODS:
        assert callable(getattr(durable.Client, name, None)), name
    start = params(durable.Client.start)
    assert {"id", "queue", "priority", "delay"} <= set(start)
    assert start["priority"].default == 0
    assert start["timeout"].default is None and start["retry"].default is None
    assert start["dedup_key"].default is None
    many = params(durable.Client.start_many)
    assert many["timeout"].default is None and many["retry"].default is None
    assert many["dedup_keys"].default is None
    sws = params(durable.Client.signal_with_start)
    assert {n: sws[n].default for n in ("id", "signal", "payload", "dedup_key")} == dict.fromkeys(
        ("id", "signal", "payload", "dedup_key")
    )
    for bulk in (durable.Client.cancel_many, durable.Client.resume_many):
        bp = params(bulk)
        assert list(bp)[1:] == ["status", "workflow", "queue", "all_runs"]
        assert bp["all_runs"].default is False
        assert bp["all_runs"].kind is inspect.Parameter.KEYWORD_ONLY
    lr = params(durable.Client.list_runs)
    assert {n: lr[n].default for n in ("status", "workflow", "queue", "limit")} == {
        "status": None,
        "workflow": None,
        "queue": None,
        "limit": 100,
    }
    assert "from_step" in params(durable.Client.fork)
    assert list(params(durable.Client.signal))[1:] == ["run_id", "name", "payload"]
    assert default(durable.Client.signal, "payload") is None
    ck = params(durable.Client.check)
    assert list(ck)[1:4] == ["status", "workflow", "finished"]
    assert (ck["status"].default, ck["workflow"].default, ck["finished"].default) == (None, None, 0)
    assert ck["jobs"].default == 1 and ck["jobs"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params(durable.AsyncClient.check).keys() == ck.keys()


def test_async_client_has_the_same_methods_as_coroutines() -> None:
    for name in CLIENT_METHODS:
        fn = getattr(durable.AsyncClient, name, None)
        assert fn is not None and inspect.iscoroutinefunction(fn), name


def test_run_handle_methods() -> None:
    for name in HANDLE_METHODS:
        assert callable(getattr(durable.RunHandle, name, None)), name
        fn = getattr(durable.AsyncRunHandle, name, None)
        assert fn is not None and inspect.iscoroutinefunction(fn), name
    assert default(durable.RunHandle.result, "timeout") is None


def test_a_handle_has_a_string_id(db_url: str) -> None:
    with durable.Client(db_url) as client:
        h = client.start("anything", 1, id="order-1")
        assert isinstance(h, durable.RunHandle)
        assert h.id == "order-1"
        assert client.get("order-1").id == "order-1"
        assert h.status() is durable.Status.PENDING
        info = h.info()
        assert isinstance(info, durable.RunInfo)
        assert (info.id, info.workflow, info.status, info.attempt) == (
            "order-1",
            "anything",
            durable.Status.PENDING,
            1,
        )
        (ev,) = h.events()
        assert isinstance(ev, durable.LogEvent) and (ev.seq, ev.type) == (1, "run_started")
        with pytest.raises(durable.RunNotFoundError):
            client.get("no-such-run")


def test_value_types_have_the_documented_fields() -> None:
    run_info = {f.name for f in dataclasses.fields(durable.RunInfo)}
    assert {
        "id",
        "workflow",
        "status",
        "queue",
        "attempt",
        "created_at",
        "updated_at",
        "progress",
        "error",
        "eta",
        "stage",
        "step",
    } <= run_info
    log_event = {f.name for f in dataclasses.fields(durable.LogEvent)}
    assert {"seq", "type", "name", "position", "attempt", "at", "data"} <= log_event
    worker_info = [f.name for f in dataclasses.fields(durable.WorkerInfo)]
    assert worker_info == [
        "id",
        "host",
        "pid",
        "queues",
        "workflows",
        "version",
        "started_at",
        "last_seen",
        "running",
    ]
    assert durable.WorkerInfo.__dataclass_params__.frozen  # type: ignore[attr-defined]
    for cls, fields in (
        (durable.CheckReport, ["version", "runs", "jobs", "seconds"]),
        (
            durable.RunCheck,
            [
                "run_id",
                "workflow",
                "status",
                "version",
                "outcome",
                "position",
                "called",
                "recorded",
                "error_type",
                "message",
            ],
        ),
        (
            durable.WorkflowCheck,
            ["workflow", "registered", "checked", "replays", "blocks", "fails"],
        ),
    ):
        assert [f.name for f in dataclasses.fields(cls)] == fields, cls
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    event_info = {f.name for f in dataclasses.fields(durable.WorkerEventInfo)}
    assert {"event", "run_id", "workflow", "queue", "worker_id", "error", "result"} <= event_info


def test_status_is_a_str_enum_of_lower_case_words() -> None:
    assert issubclass(durable.Status, str) and issubclass(durable.Status, enum.Enum)
    members = ["PENDING", "RUNNING", "SLEEPING", "COMPLETED", "FAILED", "CANCELLED", "BLOCKED"]
    assert [m.name for m in durable.Status] == members
    for m in durable.Status:
        assert m.value == m.name.lower()
        assert m == m.name.lower()
        assert durable.Status(m.name.lower()) is m


def test_worker_events() -> None:
    names = ["PROCESSING", "DONE", "COMPLETED", "ERROR", "FAILED", "STALLED"]
    assert [m.name for m in durable.WorkerEvent] == names


# ---------------------------------------------------------------- errors

ERRORS = [
    "NonDeterminismError",
    "RunFailedError",
    "RunCancelledError",
    "SerializationError",
    "UnknownWorkflowError",
    "RunNotFoundError",
    "PayloadTooLargeError",
    "PermanentError",
    "PoolProcessDiedError",
    "ResourceError",
    "IdConflictError",
    "DuplicateRunError",
    "InvalidArgumentError",
    "InvalidOptionError",
    "LogSchemaError",
    "CorruptJournalError",
    "NotInRunError",
    "StepFailedError",
    "StoreError",
    "LeaseLostError",
]


@pytest.mark.parametrize("name", ERRORS)
def test_errors_derive_from_durable_error(name: str) -> None:
    cls = getattr(durable, name)
    assert issubclass(cls, durable.DurableError)
    assert issubclass(durable.DurableError, Exception)


def test_errors_with_a_second_base() -> None:
    assert issubclass(durable.SerializationError, TypeError)
    assert issubclass(durable.RunNotFoundError, LookupError)
    assert issubclass(durable.InvalidArgumentError, durable.SerializationError)
    assert issubclass(durable.InvalidArgumentError, TypeError)
    assert issubclass(durable.InvalidOptionError, ValueError)


def test_run_failed_error_attributes() -> None:
    err = durable.RunFailedError("r-1", "ValueError", "boom")
    assert (err.run_id, err.error_type, err.error_message) == ("r-1", "ValueError", "boom")
    assert "boom" in str(err)


def test_duplicate_run_error_attributes() -> None:
    import pickle

    err = durable.DuplicateRunError("invoice-7", "r-1")
    assert (err.dedup_key, err.run_id) == ("invoice-7", "r-1")
    assert "invoice-7" in str(err) and "r-1" in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert (back.dedup_key, back.run_id) == ("invoice-7", "r-1")


# ---------------------------------------------------------------- durable.testing


def test_durable_testing_is_pinned() -> None:
    import durable.testing
    import durable.testing.plugin

    assert sorted(durable.testing.__all__) == [
        "JournalFileError",
        "TestEnv",
        "VirtualClock",
        "assert_replays",
        "env",
    ]
    assert list(params(durable.testing.env)) == ["app", "concurrency"]
    assert default(durable.testing.env, "concurrency") == 16
    assert list(params(durable.testing.assert_replays)) == ["app", "path"]
    assert issubclass(durable.testing.JournalFileError, durable.DurableError)
    assert issubclass(durable.testing.JournalFileError, ValueError)
    for name in durable.testing.__all__:
        assert inspect.getdoc(getattr(durable.testing, name)), name
    for cls in (durable.testing.TestEnv, durable.testing.VirtualClock):
        missing = [n for n in _public_methods(cls) if not inspect.getdoc(getattr(cls, n))]
        assert missing == [], cls
    assert inspect.getdoc(durable.testing.plugin.durable_env)
    assert "testing" not in durable.__all__  # imported on demand: `from durable.testing import env`
