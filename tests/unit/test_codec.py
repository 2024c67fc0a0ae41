"""``durable.codec``: every type API.md lists round-trips, others are refused, sizes are
limited, stored bytes decode into annotations or fail with a ``DurableError``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durable
from durable.codec import DEFAULT_MAX_PAYLOAD, Codec, Signature, return_type
from durable.errors import CorruptJournalError, PayloadTooLargeError, SerializationError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


class Item(msgspec.Struct):
    name: str
    qty: int = 1


class Movie(TypedDict):
    title: str
    year: int


class Pair(NamedTuple):
    left: int
    right: str


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    at: dt.datetime
    amount: decimal.Decimal
    color: Color
    items: list[Item]
    point: Point | None = None


ORDER = Order(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    at=dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC),
    amount=decimal.Decimal("12.50"),
    color=Color.BLUE,
    items=[Item("a"), Item("b", 3)],
    point=Point(1, 2, ["t"]),
)

# (value, annotation): encode then decode into the annotation gives the value back.
TYPED: list[tuple[Any, Any]] = [
    (None, type(None)),
    (True, bool),
    (False, bool),
    (0, int),
    (-(2**63), int),
    (2**64 - 1, int),
    (1.5, float),
    (float("inf"), float),
    ("", str),
    ("héllo ✓ \x00 end", str),
    (b"", bytes),
    (b"\x00\xff" * 10, bytes),
    ([1, "a", None], list),
    ([1, 2, 3], list[int]),
    ((1, "a"), tuple[int, str]),
    ((1, 2, 3), tuple[int, ...]),
    ({"a": 1, "b": [2]}, dict),
    ({1: "one", 2: "two"}, dict[int, str]),
    ({1, 2, 3}, set[int]),
    (frozenset({"a"}), frozenset[str]),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), dt.datetime),
    (dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), dt.datetime),
    (dt.date(2024, 2, 29), dt.date),
    (dt.time(23, 59, 59, 999999), dt.time),
    (dt.timedelta(days=3, seconds=4, microseconds=5), dt.timedelta),
    (dt.timedelta(seconds=-1), dt.timedelta),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID),
    (decimal.Decimal("3.14159265358979323846264338327950288"), decimal.Decimal),
    (Color.RED, Color),
    (Level.HIGH, Level),
    (Point(1, 2, ["a"]), Point),
    (Item("x", 2), Item),
    ({"title": "Up", "year": 2009}, Movie),
    (Pair(1, "r"), Pair),
    (ORDER, Order),
    ([ORDER, ORDER], list[Order]),
    ({"k": Point(3)}, dict[str, Point]),
    (Point(1), Point | None),
    (None, Point | None),
    (5, int | str),
    ("five", int | str),
]


def _id(v: Any) -> str:
    return type(v).__name__


@pytest.mark.parametrize(("value", "annotation"), TYPED, ids=[_id(v) for v, _ in TYPED])
def test_listed_types_round_trip_into_their_annotation(value: Any, annotation: Any) -> None:
    c = Codec()
    back = c.decode(c.encode(value), annotation)
    assert back == value
    assert type(back) is type(value)


# Without an annotation values come back as plain msgspec values.
UNTYPED: list[tuple[Any, Any]] = [
    ((1, 2), [1, 2]),
    ({1, 2}, [1, 2]),
    (Color.RED, "red"),
    (Level.HIGH, 2),
    (Point(1, 2), {"x": 1, "y": 2, "tags": []}),
    (Item("n"), {"name": "n", "qty": 1}),
    (Pair(1, "r"), [1, "r"]),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (decimal.Decimal("1.10"), "1.10"),
    (dt.date(2024, 1, 2), "2024-01-02"),
    (dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)),
]


@pytest.mark.parametrize(("value", "plain"), UNTYPED, ids=[_id(v) for v, _ in UNTYPED])
def test_without_annotation_values_decode_to_plain_values(value: Any, plain: Any) -> None:
    c = Codec()
    assert c.decode(c.encode(value)) == plain
    assert c.decode(c.encode(value), Any) == plain


def test_nan_round_trips() -> None:
    c = Codec()
    back = c.decode(c.encode(float("nan")), float)
    assert back != back


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_plain_values_round_trip(value: Any) -> None:
    c = Codec()
    assert c.decode(c.encode(value)) == value


# ---------------------------------------------------------------------------- refused


class Opaque:
    pass


@pytest.mark.parametrize(
    "value",
    [
        Opaque(),
        object(),
        lambda: 1,
        1 + 2j,
        2**64,
        -(2**63) - 1,
        iter([1]),
        [1, Opaque()],
        {"k": {"deeper": Opaque()}},
        Path("/tmp"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_values_raise_serialization_error(value: Any) -> None:
    with pytest.raises(SerializationError) as info:
        Codec().encode(value, "result of step 's'")
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, durable.DurableError)
    assert "result of step 's'" in str(info.value)


def test_serialization_error_through_encode_args() -> None:
    with pytest.raises(SerializationError, match="arguments"):
        Codec().encode_args((1, Opaque()), {}, "arguments of f")
    with pytest.raises(SerializationError):
        Codec().encode_args((), {"k": Opaque()}, "arguments of f")


# ---------------------------------------------------------------------------- size limit


def test_the_default_limit_is_2_mib() -> None:
    assert DEFAULT_MAX_PAYLOAD == 2 * 1024 * 1024
    assert Codec().max_payload_bytes == DEFAULT_MAX_PAYLOAD


def test_payload_at_the_limit_passes_and_one_byte_more_fails() -> None:
    c = Codec(max_payload_bytes=100)
    # bin8 header is 2 bytes: 98 bytes of data encode to exactly 100.
    assert len(c.encode(b"x" * 98)) == 100
    with pytest.raises(PayloadTooLargeError) as info:
        c.encode(b"x" * 99, "output 'big'")
    assert "101" in str(info.value) and "100" in str(info.value) and "'big'" in str(info.value)
    assert isinstance(info.value, durable.DurableError)


def test_the_default_limit_refuses_a_large_value() -> None:
    with pytest.raises(PayloadTooLargeError):
        Codec().encode("x" * (DEFAULT_MAX_PAYLOAD + 1))


def test_encode_args_is_limited_too() -> None:
    with pytest.raises(PayloadTooLargeError):
        Codec(max_payload_bytes=50).encode_args(("y" * 60,), {}, "arguments")


@pytest.mark.parametrize("limit", [0, -1])
def test_a_non_positive_limit_is_refused(limit: int) -> None:
    with pytest.raises(ValueError):
        Codec(max_payload_bytes=limit)


# ---------------------------------------------------------------------------- decoding


def test_a_value_that_no_longer_fits_its_annotation_is_a_validation_error() -> None:
    c = Codec()
    with pytest.raises(msgspec.ValidationError):
        c.decode(c.encode("text"), int)
    with pytest.raises(msgspec.ValidationError):
        c.decode(c.encode({"x": "not an int"}), Point)
    with pytest.raises(msgspec.ValidationError):
        c.decode(c.encode("purple"), Color)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used opcode
        b"\x92\x01",  # array of 2 with one element
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 billion elements
        b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB
        b"\x91" * 100_000,  # nesting bomb
    ],
)
def test_bad_stored_bytes_are_corrupt_journal_errors(data: bytes) -> None:
    with pytest.raises(CorruptJournalError):
        Codec.decode(data)
    with pytest.raises((CorruptJournalError, msgspec.ValidationError)):
        Codec.decode(data, list[int])


def test_decoding_never_imports_or_builds_named_classes() -> None:
    # A map naming a class decodes to a plain dict: nothing is looked up.
    c = Codec()
    data = c.encode({"__class__": "os.system", "args": ["echo"]})
    assert c.decode(data) == {"__class__": "os.system", "args": ["echo"]}


# ---------------------------------------------------------------------------- annotations


def test_return_type_reads_annotations() -> None:
    def f() -> list[Point]: ...

    async def g() -> Item: ...

    def h(): ...  # type: ignore[no-untyped-def]

    def n() -> None: ...

    def bad() -> 5:  # type: ignore[valid-type]
        ...

    assert return_type(f) == list[Point]
    assert return_type(g) is Item
    assert return_type(h) is Any
    assert return_type(n) is Any
    assert return_type(bad) is Any  # not a type msgspec can decode into: plain values


def test_return_type_of_an_async_function_is_its_awaited_value() -> None:
    async def d() -> list[int]:
        return []

    assert return_type(d) == list[int]


def test_signature_decodes_arguments_into_parameter_annotations() -> None:
    def f(p: Point, when: dt.datetime, n: int = 1, *rest: uuid.UUID, color: Color) -> None: ...

    sig = Signature(f)
    c = Codec()
    u = uuid.uuid4()
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    data = c.encode_args((Point(1, 2), when, 5, u, u), {"color": Color.RED}, "args")
    args, kwargs = sig.decode_args(data)
    assert args == [Point(1, 2), when, 5, u, u]
    assert kwargs == {"color": Color.RED}


def test_signature_check_refuses_arguments_that_do_not_bind() -> None:
    def f(a: int, b: int = 2) -> None: ...

    sig = Signature(f)
    sig.check((1,), {})
    with pytest.raises(TypeError):
        sig.check((), {})
    with pytest.raises(TypeError):
        sig.check((1, 2, 3), {})
    with pytest.raises(TypeError):
        sig.check((1,), {"c": 3})


def test_signature_with_untyped_parameters_decodes_plain_values() -> None:
    def f(a, b=None):  # type: ignore[no-untyped-def]
        ...

    c = Codec()
    args, kwargs = Signature(f).decode_args(c.encode_args(((1, 2),), {"b": {"x": 1}}, "a"))
    assert args == [[1, 2]] and kwargs == {"b": {"x": 1}}


def test_undecodable_arguments_are_corrupt() -> None:
    def f(a: int) -> None: ...

    with pytest.raises(CorruptJournalError):
        Signature(f).decode_args(b"\xc1")
    with pytest.raises(CorruptJournalError):
        Signature(f).decode_args(msgspec.msgpack.encode("not a pair"))


# ---------------------------------------------------------------------------- in a run


def test_step_results_decode_into_annotations_live_and_on_replay(tmp_path: Path) -> None:
    """A step's live result is what replay returns: encoded, then decoded into the step's
    return annotation (a tuple comes back as a list without one)."""
    app = durable.App("codec", database=f"sqlite:///{tmp_path}/c.db", poll_interval=0.05)
    seen: list[Any] = []

    @app.step
    def order() -> Order:
        return ORDER

    @app.step
    async def when() -> dt.datetime:
        return dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    @app.step
    def pair() -> Pair:
        return Pair(1, "r")

    @app.step
    def untyped():  # type: ignore[no-untyped-def]
        return (1, Color.RED)

    @app.workflow
    def wf() -> str:
        o, w, p, u = order(), when(), pair(), untyped()
        seen.append((o, w, p, u))
        assert isinstance(o, Order) and isinstance(o.items[0], Item)
        assert isinstance(p, Pair)
        return f"{o.amount}|{w.isoformat()}|{p.right}|{u}"

    try:
        c = app.client()
        with app.worker():
            result = c.start(wf).result(timeout=20)
        expected = "12.50|2024-01-01T00:00:00+00:00|r|[1, 'red']"
        assert result == expected
        live = seen[-1]
        assert live == (ORDER, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), Pair(1, "r"), [1, "red"])
        run_id = c.list_runs(limit=1)[0].id
        assert c.replay(run_id) == expected
        assert seen[-1] == live
    finally:
        app.close()


def test_an_unencodable_step_result_fails_the_step_for_good(tmp_path: Path) -> None:
    app = durable.App("codec2", database=f"sqlite:///{tmp_path}/c.db", poll_interval=0.05)
    calls: list[int] = []

    @app.step(retry=durable.Retry(attempts=3, initial_delay=0.01))
    def opaque() -> Any:
        calls.append(1)
        return Opaque()

    @app.step(retry=durable.Retry(attempts=3, initial_delay=0.01))
    def huge() -> bytes:
        calls.append(2)
        return b"x" * 5000

    @app.workflow
    def wf() -> list[str]:
        out = []
        for s in (opaque, huge):
            try:
                s()
            except (SerializationError, PayloadTooLargeError) as e:
                out.append(type(e).__name__)
        return out

    app.codec = Codec(max_payload_bytes=1000)
    try:
        c = app.client()
        with app.worker():
            h = c.start(wf)
            assert h.result(timeout=20) == ["SerializationError", "PayloadTooLargeError"]
        assert calls == [1, 2]  # never retried: retrying would repeat the side effect
        failed = [e for e in h.events() if e.type == "step_failed"]
        assert [e.data["retryable"] for e in failed] == [False, False]
    finally:
        app.close()
