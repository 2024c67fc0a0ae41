"""``check_replay``: the verdict of replaying one run against the code, as a value (what a
worker of this code would do with it), on the golden journals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import golden
import pytest
from golden_app import make_app
from test_golden import doc_of, rename_step

import durable
from durable.engine.replay import Journal
from durable.engine.replaying import ReplayVerdict, check_replay

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/golden.db"


@pytest.fixture
def app(url: str) -> Iterator[durable.App]:
    a = make_app(url)
    yield a
    a.close()


def verdict(app: durable.App, run_id: str) -> ReplayVerdict:
    row = app.store.get_run(run_id)
    assert row is not None
    journal = Journal(run_id, app.store.read_journal(run_id))
    wf = app.registry.workflow(row.workflow)
    return check_replay(wf, row, journal, registry=app.registry, codec=app.codec, store=app.store)


def test_an_unchanged_run_replays(url: str, app: durable.App) -> None:
    run_id = golden.load(doc_of("sleeping"), url)
    v = verdict(app, run_id)
    assert not v.blocks and v.mismatch is None and v.failure is None and v.position is None


def test_a_changed_step_blocks_with_where_and_why(url: str, app: durable.App) -> None:
    run_id = golden.load(rename_step(doc_of("resumed"), 2, "maybe_v0"), url)
    v = verdict(app, run_id)
    assert v.blocks and v.position == 2 and v.run_id == run_id
    assert v.mismatch is not None
    assert v.mismatch.called == "step 'maybe'"
    assert v.mismatch.recorded == "step 'maybe_v0'"
    assert v.workflow == "golden.resumed"


def test_arguments_that_no_longer_decode_block(url: str) -> None:
    run_id = golden.load(doc_of("sleeping"), url)
    app = durable.App("golden", database=url)

    @app.workflow(name="golden.sleeping")
    def sleeping(x: str) -> int:  # it took an int
        return 0

    try:
        v = verdict(app, run_id)
        assert v.blocks and v.mismatch is not None
        assert "arguments no longer decode" in str(v.mismatch)
        with pytest.raises(durable.NonDeterminismError, match="arguments"):
            app.client().replay(run_id)
    finally:
        app.close()


def test_code_that_now_raises_is_a_failure_not_a_block(url: str) -> None:
    run_id = golden.load(doc_of("sleeping"), url)
    app = durable.App("golden", database=url)

    @app.workflow(name="golden.sleeping")
    def sleeping(x: int) -> Any:
        raise RuntimeError("broken")

    try:
        v = verdict(app, run_id)
        assert not v.blocks and v.failure is not None
        assert v.failure.error_type == "RuntimeError"
    finally:
        app.close()
