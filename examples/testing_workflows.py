"""Testing a workflow that takes five weeks, in milliseconds, with ``durable.testing``.

The workflow below starts a subscription: a 30-day free trial (``durable.sleep``), then it
waits up to a week for the customer to confirm (a signal), then it charges the card with a
step that retries every hour (the card provider fails three times first). Run in real time
it would take 37 days; under ``durable.testing.env`` the virtual clock skips ahead whenever
the test waits for a result and nothing else can run, so each test below ends in
milliseconds, on the real engine and a real (temporary) SQLite log.

Run it as a script (``python examples/testing_workflows.py``), or as tests of your own:
copy the ``test_`` functions into your suite and run ``pytest``. ``--database URL`` names
the App's own log, which the tests never touch: the env runs on a temporary log of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import durable
from durable import App, Retry, Status
from durable.testing import env

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS: list[str] = []

DAY = 86400.0
HOUR = 3600.0


def _database() -> str:
    """``--database URL``, else ``$DURABLE_DATABASE_URL``, else ``subscriptions.db`` here."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or "sqlite:///subscriptions.db"


app = App("subscriptions", database=_database())
card_declines: dict[str, int] = {}
"""How many more times the card provider declines each customer (a stand-in for a flaky
service, set by the tests)."""


@app.step(retry=Retry(attempts=5, initial_delay=HOUR, max_delay=HOUR, jitter=False))
def charge(customer: str, cents: int) -> str:
    """Charge the card; a decline is retried an hour later."""
    if card_declines.get(customer, 0) > 0:
        card_declines[customer] -= 1
        raise ConnectionError(f"the card provider declined {customer}, try again later")
    return f"charged {customer} {cents / 100:.2f}"


@app.workflow()
def subscription(customer: str) -> str:
    """A 30-day trial, a week to confirm, then the first charge."""
    durable.sleep(30 * DAY)
    confirmed = durable.wait_signal("confirm", timeout=7 * DAY)
    if confirmed is None:
        return f"{customer}: not confirmed, trial ended"
    return charge(customer, 999)


# -- the tests: plain functions, for pytest or for main() below --------------------------


def test_a_confirmed_subscription_is_charged_after_three_declines() -> None:
    card_declines["ada"] = 3
    with env(app) as t:
        h = t.client.start(subscription, "ada")
        t.client.signal(h.id, "confirm", True)  # kept in the run's inbox until it waits
        assert h.result(timeout=10) == "charged ada 9.99"
        days = t.clock.skipped / DAY
        assert 30 + 3 / 24 - 0.01 < days < 30 + 3 / 24 + 0.01  # the trial and three retries
        events = [e.type for e in h.events()]
        assert events.count("retry_scheduled") == 3


def test_an_unconfirmed_subscription_ends_after_a_week() -> None:
    with env(app) as t:
        h = t.client.start(subscription, "bob")
        assert h.result(timeout=10) == "bob: not confirmed, trial ended"
        assert 37 - 0.01 < t.clock.skipped / DAY < 37 + 0.01


def test_a_confirmation_during_the_trial_and_a_cancel() -> None:
    with env(app) as t:
        h = t.client.start(subscription, "cy")
        while h.status() != Status.SLEEPING:  # the clock skips only inside result()
            time.sleep(0.001)
        t.clock.advance(10 * DAY)  # by hand: ten days into the trial
        info = h.info()
        assert info.status == Status.SLEEPING and info.wake_at is not None
        left = info.wake_at.timestamp() - t.clock.now()
        assert 20 * DAY - 60 < left <= 20 * DAY  # twenty days of the trial left
        h.cancel()
        assert h.status() == Status.CANCELLED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="the App's own log (the tests run on a temporary one)")
    parser.parse_args()
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    for test in tests:
        started = time.perf_counter()
        test()
        print(f"ok {test.__name__} ({(time.perf_counter() - started) * 1000:.0f} ms)")
    print(f"{len(tests)} tests passed; the App's own log was not opened: {app.database}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
