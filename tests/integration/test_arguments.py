"""Arguments checked at the door: ``client.start`` decodes them against the workflow's
annotations before writing anything; step arguments are recorded with ``step_started``, and
one that cannot be encoded fails that step call before its body runs."""

from __future__ import annotations

import msgspec
import pytest

import durable
from durable import InvalidArgumentError, SerializationError


class Opaque:
    """Not a type msgspec can encode."""


def test_an_argument_of_the_wrong_type_is_refused_at_start(app, client):
    @app.workflow(name="crawl")
    def crawl(pages: int, tags: list[str] | None = None) -> int:
        return pages

    with pytest.raises(InvalidArgumentError) as err:
        client.start(crawl, pages="four")
    assert isinstance(err.value, TypeError) and isinstance(err.value, durable.DurableError)
    assert "'pages'" in str(err.value) and "int" in str(err.value)
    with pytest.raises(InvalidArgumentError, match="'tags'"):
        client.start(crawl, 4, tags=[1, 2])
    with pytest.raises(InvalidArgumentError, match="'pages'"):
        client.start_many(crawl, [1, "two"])
    with pytest.raises(InvalidArgumentError):
        client.start("crawl", "four")  # by name, through the App's client: it has the code
    assert client.list_runs() == []
    with app.worker():
        assert client.start(crawl, 4, tags=["a"]).result(timeout=10) == 4


def test_a_client_without_the_code_cannot_check(app, client, db_url):
    @app.workflow(name="crawl")
    def crawl(pages: int) -> int:
        return pages

    with durable.Client(db_url) as code_free:
        h = code_free.start("crawl", "four")  # accepted: this client has no annotations
        with app.worker(), pytest.raises(durable.RunFailedError) as err:
            h.result(timeout=10)
    assert err.value.error_type == "CorruptJournalError"


def test_step_arguments_are_recorded_with_step_started(app, client):
    @app.step(name="charge")
    def charge(order: str, amount: int, *, currency: str = "EUR") -> str:
        return f"{order}:{amount}{currency}"

    @app.workflow()
    def checkout(order: str) -> str:
        return charge(order, 100, currency="USD")

    with app.worker():
        h = client.start(checkout, "o-1")
        assert h.result(timeout=10) == "o-1:100USD"
    started = [e for e in h.events() if e.type == "step_started"]
    assert [e.data["args"] for e in started] == [[["o-1", 100], {"currency": "USD"}]]
    assert client.replay(h.id) == "o-1:100USD"  # the journal, arguments and all, decodes


def test_an_unencodable_step_argument_fails_the_call_before_its_body(app, client):
    ran: list[object] = []

    @app.step(name="store", retry=durable.Retry(attempts=3, initial_delay=0.0))
    def store(value: object) -> None:
        ran.append(value)

    @app.workflow()
    def flow() -> str:
        try:
            store(Opaque())
        except SerializationError as exc:
            return f"refused: {type(exc).__name__}"
        return "stored"

    with app.worker():
        h = client.start(flow)
        assert h.result(timeout=10) == "refused: SerializationError"
    assert ran == []
    types = [(e.type, e.name) for e in h.events() if e.position == 1]
    assert types == [("step_failed", "store")]
    failed = next(e for e in h.events() if e.type == "step_failed")
    assert failed.data["retryable"] is False
    assert failed.data["error"]["type"] == "SerializationError"
    assert client.replay(h.id) == "refused: SerializationError"


def test_too_large_step_arguments_fail_the_call(make_app):
    app = make_app(max_payload_bytes=1024)
    ran: list[int] = []

    @app.step(name="big")
    def big(blob: bytes) -> int:
        ran.append(len(blob))
        return len(blob)

    @app.workflow()
    async def flow() -> str:
        try:
            await big(b"x" * 4096)
        except durable.PayloadTooLargeError:
            return "too large"
        return "fitted"

    client = app.client()
    with app.worker():
        assert client.start(flow).result(timeout=10) == "too large"
    assert ran == []


def test_a_journal_whose_step_started_has_no_arguments_still_decodes():
    from durable.events import StepStartedData, decode_data

    old = msgspec.msgpack.encode({"stage": "s"})
    assert decode_data("step_started", old) == StepStartedData(stage="s")
    assert decode_data("step_started", msgspec.msgpack.encode({})).args is None
    new = msgspec.msgpack.encode({"stage": None, "args": [["a", 1], {}]})
    got = decode_data("step_started", new)
    assert got.stage is None and msgspec.msgpack.decode(got.args) == [["a", 1], {}]
