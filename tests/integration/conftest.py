"""Fixtures for the integration suite: a real SQLite log per test, an App on it, helpers.

Every test gets its own App bound to the fresh log of the ``db_url`` fixture (tests/conftest.py)
and runs an embedded worker in-process (``with app.worker(): ...``). Workflows and steps are
defined inside each test, so their counters (plain lists captured by closures) start empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.otel import OTel
from harness.processes import wait_for

import durable

# Short enough that a missing push wake-up does not make the suite slow; the tests that check
# push wake-ups build their own App with a long poll interval.
FAST_POLL = 0.1


def _close(app: Any) -> None:
    close = getattr(app, "close", None)
    if callable(close):
        close()


@pytest.fixture
def make_app(db_url: str) -> Iterator[Callable[..., durable.App]]:
    """Build Apps on the test's log (several Apps may share it, e.g. "old" and "new" code)."""
    apps: list[durable.App] = []

    def make(name: str = "it", **kwargs: Any) -> durable.App:
        kwargs.setdefault("poll_interval", FAST_POLL)
        kwargs.setdefault("database", db_url)
        app = durable.App(name, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in reversed(apps):
        _close(app)


@pytest.fixture
def deploys(db_url: str) -> Iterator[Callable[..., durable.App]]:
    """``deploys(code, version=None)``: an App of ``procs/deployapp.py`` (deploy ``code``:
    ``v1``, ``v2`` or ``v3``) on the test's log, closed at the end. How long its runs sleep
    is ``deployapp.SLEEP``, which each test module sets."""
    from deployapp import make_app as make_deploy  # procs/ is on the path of those modules

    made: list[durable.App] = []

    def make(code: str, version: str | None = None) -> durable.App:
        app = make_deploy(code, db_url, version)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., durable.App]) -> durable.App:
    """An App on the test's fresh log."""
    return make_app()


@pytest.fixture
def client(app: durable.App) -> durable.Client:
    """The App's client (it knows the App's workflows)."""
    return app.client()


@pytest.fixture
def db_path(db_url: str) -> Path:
    """The file behind ``db_url``."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix):
        pytest.skip("about a SQLite file: not applicable to this backend")
    return Path(db_url[len(prefix) :])


WaitUntil = Callable[..., Any]


def _wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> Any:
    return wait_for(predicate, timeout, what or repr(predicate), interval=interval)


@pytest.fixture
def wait_until() -> WaitUntil:
    """``wait_until(predicate, timeout=10, what="...")``: poll until truthy, else fail."""
    return _wait_until


@pytest.fixture
def wait_status() -> Callable[..., None]:
    """``wait_status(handle, Status.X, timeout=10)``: poll a run until it has that status."""

    def wait(handle: Any, status: durable.Status, timeout: float = 10.0) -> None:
        seen: list[Any] = []

        def check() -> bool:
            current = handle.status()
            seen.append(current)
            return bool(current == status)

        try:
            _wait_until(check, timeout=timeout)
        except AssertionError:
            raise AssertionError(
                f"run {handle.id} never became {status!r}; last status {seen[-1:]!r}"
            ) from None

    return wait


@pytest.fixture
def fx(tmp_path: Path) -> Path:
    """The directory that the step bodies of the process tests write their side effects to."""
    path = tmp_path / "fx"
    path.mkdir()
    return path


@pytest.fixture
def check(db_url: str) -> Iterator[durable.Client]:
    """A code-less client on the log, for everything a process test reads."""
    client = durable.Client(db_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def otel_session() -> OTel:
    """The process's SDK providers, set once (the API allows one global provider)."""
    return OTel()


@pytest.fixture
def otel(otel_session: OTel) -> OTel:
    """The SDK providers, with the finished spans of earlier tests cleared."""
    otel_session.spans.clear()
    return otel_session
