"""The ``store`` fixture: a fresh :class:`durable.log.Store` on every backend of ``db_url``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durable.log import Store, open_store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A freshly opened log, one per backend that ``db_url`` (tests/conftest.py) names."""
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()
