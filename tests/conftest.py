"""Shared fixtures: a fresh log per test, on every backend the suite runs against."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL_ENV = "DURABLE_TEST_POSTGRES_URL"


def _backends() -> list[str]:
    return ["sqlite"]


@pytest.fixture(params=_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """The URL of a fresh, empty durable log: one parameter per backend."""
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/durable-{uuid.uuid4().hex[:8]}.db"
        return
    raise AssertionError(f"unknown backend {backend!r}: {os.environ.get(POSTGRES_URL_ENV)}")
