"""The pytest plugin of ``durable.testing`` (an entry point of the package): the
``durable_env`` fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from durable.app import App
from durable.testing.env import TestEnv, env

__all__ = ["durable_env"]


@pytest.fixture
def durable_env() -> Iterator[Callable[..., TestEnv]]:
    """A factory: ``t = durable_env(app)`` is ``env(app)`` started, closed when the test
    ends (keyword arguments as for ``env``)."""
    started: list[TestEnv] = []

    def make(app: App, *, concurrency: int = 16) -> TestEnv:
        t = env(app, concurrency=concurrency).start()
        started.append(t)
        return t

    yield make
    for t in reversed(started):
        t.close()
