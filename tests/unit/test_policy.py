"""``durable.engine.policy``: Retry validation, backoff delays, what may be retried."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durable
from durable.engine.policy import Retry, is_retryable
from durable.errors import PermanentError


class Declined(Exception):
    pass


class DeclinedHarder(Declined):
    pass


# ---------------------------------------------------------------------------- validation


def test_the_defaults_are_the_documented_ones() -> None:
    r = Retry()
    assert (r.attempts, r.initial_delay, r.backoff, r.max_delay, r.jitter, r.non_retryable) == (
        3,
        1.0,
        2.0,
        60.0,
        True,
        (),
    )
    assert durable.Retry is Retry


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"initial_delay": -0.1},
        {"max_delay": -1.0},
        {"backoff": 0.5},
        {"backoff": 0.0},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Retry(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 1}, {"initial_delay": 0.0}, {"max_delay": 0.0}, {"backoff": 1.0}]
)
def test_edge_values_are_accepted(kwargs: dict[str, float]) -> None:
    Retry(**kwargs)  # type: ignore[arg-type]


def test_non_retryable_is_normalised_to_a_tuple() -> None:
    assert Retry(non_retryable=KeyError).non_retryable == (KeyError,)  # type: ignore[arg-type]
    assert Retry(non_retryable=[KeyError, ValueError]).non_retryable == (  # type: ignore[arg-type]
        KeyError,
        ValueError,
    )


def test_a_policy_is_frozen_and_hashable() -> None:
    r = Retry(attempts=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.attempts = 5  # type: ignore[misc]
    assert r == Retry(attempts=4)
    assert hash(r) == hash(Retry(attempts=4))


# ---------------------------------------------------------------------------- delays


def test_delays_without_jitter_grow_by_the_backoff_factor() -> None:
    r = Retry(attempts=10, initial_delay=0.5, backoff=3.0, max_delay=100.0, jitter=False)
    assert [r.delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 13.5, 40.5]


def test_delays_are_capped_by_max_delay() -> None:
    r = Retry(attempts=10, initial_delay=1.0, backoff=2.0, max_delay=5.0, jitter=False)
    assert [r.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_one_is_a_constant_delay() -> None:
    r = Retry(initial_delay=0.25, backoff=1.0, jitter=False)
    assert {r.delay(n) for n in range(1, 20)} == {0.25}


def test_zero_delay_stays_zero_with_jitter() -> None:
    assert Retry(initial_delay=0.0, jitter=True).delay(3) == 0.0


def test_jitter_uses_the_given_generator() -> None:
    r = Retry(initial_delay=2.0, backoff=2.0, jitter=True)
    a = [r.delay(n, random.Random(7)) for n in range(1, 5)]
    b = [r.delay(n, random.Random(7)) for n in range(1, 5)]
    assert a == b
    assert a != [2.0, 4.0, 8.0, 16.0]


def test_jitter_spreads_delays() -> None:
    r = Retry(initial_delay=1.0, jitter=True)
    rng = random.Random(1)
    seen = {r.delay(1, rng) for _ in range(200)}
    assert len(seen) > 100
    assert min(seen) < 0.6 and max(seen) > 0.9


def test_a_huge_attempt_number_does_not_overflow_the_cap() -> None:
    r = Retry(attempts=5000, initial_delay=1.0, backoff=1.5, max_delay=30.0, jitter=False)
    assert r.delay(1000) == 30.0


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(0.0, 100.0),
    backoff=st.floats(1.0, 10.0),
    cap=st.floats(0.0, 1000.0),
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32),
)
def test_jittered_delay_lies_within_half_and_full_delay(
    initial: float, backoff: float, cap: float, n: int, seed: int
) -> None:
    plain = Retry(initial_delay=initial, backoff=backoff, max_delay=cap, jitter=False)
    jittered = Retry(initial_delay=initial, backoff=backoff, max_delay=cap, jitter=True)
    d = plain.delay(n)
    assert 0.0 <= d <= cap
    j = jittered.delay(n, random.Random(seed))
    assert d / 2 <= j <= d


@settings(max_examples=100, deadline=None)
@given(
    initial=st.floats(0.0, 10.0),
    backoff=st.floats(1.0, 4.0),
    cap=st.floats(0.0, 100.0),
    n=st.integers(1, 40),
)
def test_delays_never_decrease(initial: float, backoff: float, cap: float, n: int) -> None:
    r = Retry(initial_delay=initial, backoff=backoff, max_delay=cap, jitter=False)
    assert r.delay(n) <= r.delay(n + 1)


# ---------------------------------------------------------------------------- is_retryable


def test_no_policy_means_one_try() -> None:
    assert not is_retryable(None, RuntimeError("x"), 1)


def test_tries_run_out_at_attempts() -> None:
    r = Retry(attempts=3)
    assert is_retryable(r, RuntimeError(), 1)
    assert is_retryable(r, RuntimeError(), 2)
    assert not is_retryable(r, RuntimeError(), 3)
    assert not is_retryable(r, RuntimeError(), 4)
    assert not is_retryable(Retry(attempts=1), RuntimeError(), 1)


def test_permanent_error_is_never_retried() -> None:
    assert not is_retryable(Retry(attempts=10), PermanentError("no"), 1)

    class MyPermanent(PermanentError):
        pass

    assert not is_retryable(Retry(attempts=10), MyPermanent("no"), 1)
    assert issubclass(PermanentError, durable.DurableError)


def test_non_retryable_types_and_their_subclasses_fail_at_once() -> None:
    r = Retry(attempts=5, non_retryable=(Declined,))
    assert not is_retryable(r, Declined(), 1)
    assert not is_retryable(r, DeclinedHarder(), 1)
    assert is_retryable(r, ValueError(), 1)


@pytest.mark.parametrize("exc", [TimeoutError(), ConnectionError(), KeyError("k"), OSError()])
def test_ordinary_errors_are_retried(exc: Exception) -> None:
    assert is_retryable(Retry(attempts=2), exc, 1)


def test_retry_if_must_take_the_error() -> None:
    with pytest.raises(TypeError, match="not str"):
        Retry(retry_if="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="called with one argument, the error"):
        Retry(retry_if=lambda: True)  # type: ignore[arg-type,misc]
    with pytest.raises(TypeError, match="called with one argument, the error"):
        Retry(retry_if=lambda exc, attempt: True)  # type: ignore[arg-type,misc]
    Retry(retry_if=lambda exc, *rest: True)
