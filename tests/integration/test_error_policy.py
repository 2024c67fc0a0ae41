"""The error policy, on both backends: ``Retry(retry_if=...)`` on steps and workflows (and
refused on a run's own retry), and ``raise PermanentError(...) from cause`` recording the
cause's type and message, live and at replay."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import durable

pytestmark = pytest.mark.timeout(60)

Make = Callable[..., durable.App]


class HttpError(Exception):
    """An HTTP failure with its status in the message."""


def _quick(**kw: object) -> durable.Retry:
    return durable.Retry(attempts=4, initial_delay=0.01, jitter=False, **kw)  # type: ignore[arg-type]


def test_retry_if_decides_which_failures_are_tried_again(make_app: Make) -> None:
    app = make_app()
    calls: dict[str, int] = {}

    def server_side(exc: BaseException) -> bool:
        return isinstance(exc, HttpError) and str(exc).startswith("5")

    @app.step(retry=_quick(retry_if=server_side))
    def get(status: str) -> str:
        calls[status] = calls.get(status, 0) + 1
        if calls[status] < 3:
            raise HttpError(status)
        return status

    @app.workflow(retry=_quick(retry_if=lambda exc: "again" in str(exc)))
    def fetch(status: str) -> str:
        return get(status)

    @app.workflow(retry=_quick(retry_if=lambda exc: "again" in str(exc)))
    def body_fails(message: str) -> str:
        calls[message] = calls.get(message, 0) + 1
        if calls[message] < 2:
            raise RuntimeError(message)
        return message

    client = app.client()
    with app.worker():
        assert client.start(fetch, "503").result(timeout=20) == "503"
        with pytest.raises(durable.RunFailedError, match="HttpError: 404"):
            client.start(fetch, "404").result(timeout=20)
        again = client.start(body_fails, "try again")
        assert again.result(timeout=20) == "try again"
        with pytest.raises(durable.RunFailedError, match="RuntimeError: stop"):
            client.start(body_fails, "stop").result(timeout=20)
    assert calls["503"] == 3 and calls["404"] == 1 and calls["stop"] == 1
    assert again.info().attempt == 2


def test_a_retry_if_that_raises_retries_nothing_more(make_app: Make) -> None:
    app = make_app()
    calls = []

    def broken(exc: BaseException) -> bool:
        raise ZeroDivisionError("predicate bug")

    @app.step(retry=_quick(retry_if=broken))
    def flaky() -> None:
        calls.append(1)
        raise ConnectionError("down")

    @app.workflow
    def wf() -> None:
        flaky()

    client = app.client()
    with app.worker(), pytest.raises(durable.RunFailedError, match="ConnectionError"):
        client.start(wf).result(timeout=20)
    assert calls == [1]


def test_a_runs_own_retry_with_retry_if_is_refused_and_nothing_written(make_app: Make) -> None:
    app = make_app()

    @app.workflow
    def wf() -> None:
        return None

    client = app.client()
    with pytest.raises(durable.InvalidOptionError, match="cannot have retry_if"):
        client.start(wf, retry=durable.Retry(retry_if=lambda e: True))
    with pytest.raises(durable.InvalidOptionError, match="cannot have retry_if"):
        client.start_many(wf, [(), ()], retry=durable.Retry(retry_if=lambda e: True))
    assert client.list_runs() == []
    with pytest.raises(TypeError, match="retry_if takes a function"):
        durable.Retry(retry_if=True)  # type: ignore[arg-type]


def test_permanent_error_from_a_cause_records_the_cause(make_app: Make) -> None:
    app = make_app()
    app.register_errors(HttpError)
    seen: list[tuple[str, str, str]] = []

    @app.step(retry=_quick())
    def download(url: str) -> str:
        try:
            raise HttpError(f"410 {url} is gone")
        except HttpError as exc:
            raise durable.PermanentError("gone for good") from exc

    @app.workflow(retry=_quick())
    def mirror(url: str) -> str:
        try:
            return download(url)
        except durable.PermanentError as exc:  # the same branch live and at replay
            cause = exc.__cause__
            assert cause is not None
            seen.append((type(exc).__name__, type(cause).__name__, str(cause)))
            raise

    @app.workflow(retry=_quick())
    def direct() -> None:
        try:
            {}["x"]
        except KeyError as exc:
            raise durable.PermanentError("no key") from exc

    @app.workflow(retry=_quick())
    def bare() -> None:
        raise durable.PermanentError("no cause")

    client = app.client()
    with app.worker():
        h = client.start(mirror, "a.example/x")
        with pytest.raises(durable.RunFailedError) as failed:
            h.result(timeout=20)
        d = client.start(direct)
        with pytest.raises(durable.RunFailedError):
            d.result(timeout=20)
        b = client.start(bare)
        with pytest.raises(durable.RunFailedError):
            b.result(timeout=20)
    assert (failed.value.error_type, failed.value.error_message) == (
        "HttpError",
        "410 a.example/x is gone",
    )
    info = h.info()
    assert (info.error_type, info.error_message, info.attempt) == (
        "HttpError",
        "410 a.example/x is gone",
        1,
    )
    [step_failed] = [e for e in h.events() if e.type == "step_failed"]
    assert step_failed.data["error"]["type"] == "HttpError"
    assert step_failed.data["error"]["permanent"] is True
    assert step_failed.data["retryable"] is False
    assert d.info().error_type == "KeyError" and d.info().attempt == 1
    assert b.info().error_type == "PermanentError" and b.info().error_message == "no cause"
    with pytest.raises(durable.RunFailedError):
        client.replay(h.id)  # replay takes the same except branch, with the rebuilt cause
    assert seen == [("PermanentError", "HttpError", "410 a.example/x is gone")] * 2
