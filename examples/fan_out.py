"""Fan out to child runs without waiting, take the first mirror to answer, and control the
flow from a client: dedup keys, signal-with-start, bulk cancel.

    python examples/fan_out.py [--database URL] [--seconds S]

- ``build_report`` starts one child run per region with ``durable.start_child`` (each starts
  at once; the parent goes on without waiting), asks three mirrors for the price list and
  keeps the first to answer with ``durable.wait_first`` (the others go on, unwaited for,
  and end by themselves), then collects every region's result with ``child.result()``. A
  region that fails raises ``RunFailedError`` from its ``result()``; the report notes it
  and goes on.
- A second start of the report with the same ``dedup_key`` while the first is unfinished is
  refused with ``DuplicateRunError``; once the first has ended, the key is free.
- ``client.signal_with_start`` adds items to a cart: the first call starts the cart run, the
  next ones only signal it, each in one transaction.
- ``client.cancel_many(workflow=...)`` cancels every leftover cart at the end.

The log is SQLite ``fan_out.db`` in the current folder unless ``--database`` (or
``DURABLE_DATABASE_URL``) names another; a worker runs in this process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import durable
from durable import App

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS = ["--seconds", "0.05"]

DEFAULT_DATABASE = "sqlite:///fan_out.db"
SECONDS = 0.3
"""How long a simulated region or mirror takes (``--seconds``); mirror ``b`` is quickest."""
REGIONS = ["north", "south", "east", "west"]


def _database_from_argv() -> str:
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = App("fan-out", database=_database_from_argv(), poll_interval=0.1)


@app.step(name="sum_sales")
def sum_sales(region: str) -> int:
    """The sales of a region (simulated); ``west`` has no data today."""
    time.sleep(SECONDS)
    if region == "west":
        raise durable.PermanentError("no data for west")
    return 100 * (REGIONS.index(region) + 1)


@app.workflow(name="region_sales")
def region_sales(region: str) -> int:
    """One child run per region."""
    return sum_sales(region)  # type: ignore[no-any-return]


@app.step(name="ask_mirror")
def ask_mirror(mirror: str) -> str:
    """Download the price list from one mirror (simulated): ``b`` is the quickest."""
    time.sleep(SECONDS * (1 if mirror == "b" else 6))
    return f"prices from mirror {mirror}"


@app.workflow(name="price_list")
def price_list(mirror: str) -> str:
    """One child run per mirror."""
    return ask_mirror(mirror)  # type: ignore[no-any-return]


@app.workflow(name="build_report")
def build_report(day: str) -> dict[str, object]:
    """Fan out to the regions and the mirrors, then fan in."""
    regions = {r: durable.start_child(region_sales, r) for r in REGIONS}  # no waiting
    mirrors = [durable.start_child(price_list, m) for m in ("a", "b", "c")]
    first = durable.wait_first(mirrors)  # journaled: a replay picks the same mirror
    sales: dict[str, object] = {}
    for region, child in regions.items():
        try:
            sales[region] = child.result()
        except durable.RunFailedError as exc:
            sales[region] = f"failed: {exc.error_message}"
    return {"day": day, "prices": first.result(), "sales": sales}


@app.workflow(name="cart")
def cart(owner: str) -> list[str]:
    """A cart that takes items by signal until ``checkout``."""
    items: list[str] = []
    while (item := durable.wait_signal("add")) != "checkout":
        items.append(str(item))
    return items


def main(argv: list[str] | None = None) -> int:
    global SECONDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help=f"the log (default {DEFAULT_DATABASE})")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="simulated work")
    args = parser.parse_args(argv)
    SECONDS = args.seconds

    client = app.client()
    tag = uuid.uuid4().hex[:6]
    problems: list[str] = []
    with app.worker():
        report = client.start(build_report, "monday", dedup_key=f"report-{tag}")
        try:
            client.start(build_report, "monday", dedup_key=f"report-{tag}")
            problems.append("a second report started while the first was unfinished")
        except durable.DuplicateRunError as exc:
            print(f"refused: {exc}")
        result = report.result(timeout=60)
        print(f"report: {result}")
        sales = {"north": 100, "south": 200, "east": 300, "west": "failed: no data for west"}
        if result["sales"] != sales or not str(result["prices"]).startswith("prices from"):
            problems.append(f"report {result}")
        again = client.start(build_report, "tuesday", dedup_key=f"report-{tag}")
        print(f"the key is free again: started {again.id}")

        for item in ("tea", "jam", "checkout"):
            h = client.signal_with_start(
                cart, "ada", id=f"cart-ada-{tag}", signal="add", payload=item
            )
        items = h.result(timeout=30)
        print(f"cart: {items}")
        if items != ["tea", "jam"]:
            problems.append(f"cart {items}")
        client.signal_with_start(cart, "bob", id=f"cart-bob-{tag}", signal="add", payload="milk")
        print(f"cancelled {client.cancel_many(workflow=cart)} leftover cart(s)")
        again.cancel()
    app.close()
    for problem in problems:
        print(f"unexpected: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
