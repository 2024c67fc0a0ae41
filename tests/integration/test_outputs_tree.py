"""The outputs tree, on SQLite and Postgres: keys written in step bodies are kept under their
step call (``step``, ``step#2``...), keys of workflow code under their stage, and no key can
overwrite another; the command line prints the same tree; journals written before step
nodes existed read as they were written.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from harness.processes import run

import durable
from durable.events import EventType as T
from durable.events import OutputData, decode_data, encode_data
from durable.outputs import output_tree

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(sys.executable).parent / "durable"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]


def _app(make_app: Callable[..., durable.App]) -> tuple[durable.App, object]:
    app = make_app()

    @app.step(name="fetch")
    def fetch(url: str) -> int:
        durable.output("status", 200)
        durable.output("url", url)
        return len(url)

    @app.step(name="parse")
    def parse(n: int) -> str:
        durable.output("status", "parsed")  # the same key as fetch's: both kept
        return f"n={n}"

    @app.workflow(name="pipeline")
    def pipeline() -> str:
        with durable.stage("crawl"):
            a = fetch("a")
            b = fetch("bb")  # the same step twice in the stage: one node per call
            text = parse(a + b)
            durable.output("total", a + b)  # a key of workflow code
        fetch("ccc")  # outside any stage
        return text

    return app, pipeline


def test_step_keys_are_kept_per_step_and_per_call(make_app: Callable[..., durable.App]) -> None:
    app, pipeline = _app(make_app)
    with app.worker():
        h = app.client().start(pipeline, id="tree-1")
        assert h.result(timeout=20) == "n=3"
    tree = h.outputs()
    assert tree == {
        "crawl": {
            "fetch": {"status": 200, "url": "a", "result": 1},
            "fetch#2": {"status": 200, "url": "bb", "result": 2},
            "parse": {"status": "parsed", "result": "n=3"},
            "total": 3,
        },
        "main": {"fetch": {"status": 200, "url": "ccc", "result": 3}},
    }
    nodes = [k for k, v in tree["crawl"].items() if isinstance(v, durable.StepOutputs)]
    assert nodes == ["fetch", "fetch#2", "parse"]
    assert not isinstance(tree["crawl"]["total"], durable.StepOutputs)
    # A replay writes nothing again, so the tree is the same after a resume-free replay.
    assert app.client().replay(h.id) == "n=3"
    assert h.outputs() == tree


def test_the_tries_of_one_call_share_its_node(make_app: Callable[..., durable.App]) -> None:
    app = make_app()
    tries: list[int] = []

    @app.step(name="flaky", retry=durable.Retry(attempts=3, initial_delay=0, jitter=False))
    def flaky() -> str:
        tries.append(1)
        durable.output("try", len(tries))
        durable.output(f"only-{len(tries)}", True)
        if len(tries) < 2:
            raise OSError("again")
        return "ok"

    @app.workflow(name="flow")
    def flow() -> str:
        return flaky()

    with app.worker():
        h = app.client().start(flow)
        assert h.result(timeout=20) == "ok"
    assert h.outputs() == {
        "main": {"flaky": {"try": 2, "only-1": True, "only-2": True, "result": "ok"}}
    }


def test_colliding_keys_are_refused(make_app: Callable[..., durable.App]) -> None:
    app = make_app()

    @app.step(name="charge")
    def charge() -> int:
        return 1

    @app.step(name="writes_result")
    def writes_result() -> int:
        durable.output("result", 5)
        return 1

    @app.workflow(name="step_name")
    def step_name() -> str:
        charge()
        try:
            durable.output("charge", 1)
        except ValueError as exc:
            return str(exc)
        return "no error"

    @app.workflow(name="call_label")
    def call_label() -> str:
        try:
            durable.output("charge#2", 1)
        except ValueError as exc:
            return str(exc)
        return "no error"

    @app.workflow(name="result_key")
    def result_key() -> int:
        return writes_result()

    client = app.client()
    with app.worker():
        said = client.start(step_name).result(timeout=20)
        assert "'charge' is the name of a step" in said
        assert "'charge' is the name of a step" in client.start(call_label).result(timeout=20)
        with pytest.raises(durable.RunFailedError, match="the key 'result' of a step's outputs"):
            client.start(result_key).result(timeout=20)
    with pytest.raises(ValueError, match="may not end in '#' and digits"):
        app.step(name="load#2")(lambda: None)


def test_runs_show_prints_the_tree(make_app: Callable[..., durable.App], db_url: str) -> None:
    app, pipeline = _app(make_app)
    with app.worker():
        h = app.client().start(pipeline, id="tree-cli")
        h.result(timeout=20)
    text = run([*COMMAND, "--database", db_url, "runs", "show", "tree-cli"], timeout=60)
    assert text.returncode == 0, text.stderr
    lines = [line.strip() for line in text.stdout.splitlines()]
    for line in [
        "crawl.fetch.status = 200",
        "crawl.fetch.result = 1",
        "crawl.fetch#2.url = 'bb'",
        "crawl.parse.status = 'parsed'",
        "crawl.total = 3",
        "main.fetch.result = 3",
    ]:
        assert line in lines, text.stdout
    shown = run([*COMMAND, "--database", db_url, "runs", "show", "tree-cli", "--json"])
    assert json.loads(shown.stdout)["outputs"] == h.outputs()


def test_an_output_event_without_a_step_decodes_and_reads_as_before() -> None:
    class OldOutputData(msgspec.Struct, omit_defaults=True):  # the payload before step nodes
        value: msgspec.Raw
        stage: str
        key: str | None = None

    raw = msgspec.msgpack.encode("v")
    old = msgspec.msgpack.encode(OldOutputData(msgspec.Raw(raw), "s", "output|s1.1|k|1"))
    data = decode_data(T.OUTPUT, old)
    assert isinstance(data, OutputData) and data.step is None and data.stage == "s"
    new = OutputData(msgspec.Raw(raw), "s", "k", step=1)
    assert decode_data(T.OUTPUT, encode_data(new)).step == 1

    at = dt.datetime.now(dt.UTC)
    events = [
        durable.LogEvent(1, "step_started", "fetch", 1, 1, at, {"stage": "s"}),
        durable.LogEvent(2, "output", "k", None, None, at, {"stage": "s", "value": "v"}),
        durable.LogEvent(3, "step_completed", "fetch", 1, 1, at, {"stage": "s", "result": 2}),
    ]
    assert output_tree(events) == {"s": {"k": "v", "fetch": {"result": 2}}}
