"""Fill a durable log with a variety of runs, to look at the dashboard (and to test it).

    python tests/ui/make_demo_log.py sqlite:///demo.db [--runs 300]
    durable ui --database sqlite:///demo.db

Runs completed, failed after retries, sleeping, waiting for a signal, cancelled, with child
runs, with stages, progress, messages and outputs (one output is ``<script>`` text), under two
code versions: release ``V1`` starts them; release ``V2`` (:func:`next_release`) inserts a
fraud check into ``checkout`` before its wait for shipping, without a patch, so the checkouts
that V1 left waiting are parked ``BLOCKED`` when V2 replays them.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import durable
from durable import App, Retry

V1 = "2026.11.3"
V2 = "2026.12.0"

app = App("demo", version=V1)


class UpstreamError(Exception):
    """A simulated failure of a remote service."""


@app.step(retry=Retry(attempts=3, initial_delay=0.05, backoff=2.0, jitter=False))
def fetch(source: str, n: int, flaky: int) -> list[int]:
    """Read a batch; the first ``flaky`` attempts fail."""
    time.sleep(0.01)
    attempt = durable.info().step_attempt or 1
    if attempt <= flaky:
        raise ConnectionError(f"{source}: connection reset (attempt {attempt})")
    return list(range(n))


@app.step()
def transform(rows: list[int]) -> dict[str, Any]:
    """Sum the rows."""
    time.sleep(0.01)
    return {"rows": len(rows), "total": sum(rows)}


@app.step(retry=Retry(attempts=2, initial_delay=0.05, jitter=False))
def publish(summary: dict[str, Any], fail: bool) -> str:
    """Publish a report (fails for good when ``fail``)."""
    time.sleep(0.01)
    if fail:
        raise UpstreamError("the report service answered 503")
    return f"published {summary['rows']} rows"


@app.workflow(queue="etl")
def nightly_etl(source: str, flaky: int = 0, fail: bool = False) -> dict[str, Any]:
    """Extract, transform, publish, in stages, with progress, messages and outputs."""
    with durable.stage("extract"):
        rows = fetch(source, 20, flaky)
        durable.progress(0.33)
        durable.message(f"fetched {len(rows)} rows", source=source)
    with durable.stage("transform"):
        summary = transform(rows)
        durable.output("summary", summary)
        durable.progress(0.66)
    with durable.stage("publish"):
        report = publish(summary, fail)
        durable.output("report", report)
        durable.progress(1.0)
    return {"source": source, "report": report}


@app.step()
def charge(order: str, cents: int) -> str:
    """Charge a card (simulated)."""
    time.sleep(0.005)
    return f"ch_{order}"


@app.workflow(queue="payments")
def checkout(order: str, cents: int) -> str:
    """Charge, then wait for the shipping signal (a day at most)."""
    receipt = charge(order, cents)
    durable.progress(0.5)
    durable.wait_signal("shipped", timeout=86400)
    durable.progress(1.0)
    return receipt


def next_release(database: str) -> App:
    """Release ``V2`` of the demo, which serves ``checkout`` only: it checks for fraud after
    the charge and before the wait, a call that V1's journals do not have there."""
    nxt = App("demo", database=database, version=V2)

    @nxt.step(name="charge")
    def charge_v2(order: str, cents: int) -> str:
        time.sleep(0.005)
        return f"ch_{order}"

    @nxt.step(name="fraud_check")
    def fraud_check(order: str, cents: int) -> bool:
        return cents < 90_000

    @nxt.workflow(name="checkout", queue="payments")
    def checkout_v2(order: str, cents: int) -> str:
        receipt = charge_v2(order, cents)
        fraud_check(order, cents)  # new in V2, no durable.patched(): V1's runs cannot replay
        durable.progress(0.5)
        durable.wait_signal("shipped", timeout=86400)
        durable.progress(1.0)
        return receipt

    return nxt


def block_waiting(url: str, run_ids: list[str], timeout: float = 30.0) -> None:
    """Signal the V1 checkouts ``run_ids`` under a V2 worker: each is parked ``BLOCKED``."""
    nxt = next_release(url)
    client = nxt.client()
    try:
        with nxt.worker():
            for rid in run_ids:
                client.signal(rid, "shipped", {"carrier": "UPS"})
            deadline = time.monotonic() + timeout
            while any(client.get(r).status() != durable.Status.BLOCKED for r in run_ids):
                if time.monotonic() > deadline:
                    raise RuntimeError("the V1 checkouts were not blocked by V2")
                time.sleep(0.02)
    finally:
        nxt.close()


@app.workflow(queue="default")
def reminder(user: str, seconds: float) -> str:
    """Sleep, then remind."""
    durable.message(f"reminding {user} later")
    durable.sleep(seconds)
    return f"reminded {user}"


@app.step()
def resize(image: str) -> str:
    """Resize one image (simulated)."""
    time.sleep(0.005)
    return f"{image}@2x"


@app.workflow(queue="media")
def resize_one(image: str) -> str:
    """A child run: resize one image."""
    return resize(image)


@app.workflow(queue="media")
def gallery(name: str, images: int) -> list[str]:
    """A parent run: one child run per image."""
    out = []
    for i in range(images):
        out.append(resize_one(f"{name}-{i}.png"))
        durable.progress((i + 1) / images)
    return out


@app.step()
def echo(text: str) -> str:
    """Return ``text`` as it is."""
    return text


@app.workflow()
def hostile(text: str) -> str:
    """A run whose step output is markup (the dashboard must show it as text)."""
    durable.output("html", text)
    return echo(text)


@app.step(name="measure")
def measure(part: str) -> int:
    """A step whose body writes an output of its own (the same key on every call)."""
    durable.output("size", len(part))
    return len(part) * 10


@app.workflow()
def measured(parts: list[str]) -> int:
    """Calls one step several times in a stage: one node of the outputs tree per call."""
    with durable.stage("measure"):
        total = sum(measure(p) for p in parts)
        durable.output("total", total)
    return total


@app.step()
def slow_tick(i: int) -> int:
    """One slow step."""
    time.sleep(0.4)
    return i


@app.workflow()
def slow_job(steps: int) -> int:
    """A run that moves slowly, reporting progress after each step."""
    for i in range(steps):
        slow_tick(i)
        durable.progress((i + 1) / steps)
    return steps


def fill(url: str, runs: int, seed: int = 7) -> dict[str, list[str]]:
    """Start and execute about ``runs`` runs of every kind on the log at ``url``."""
    app.database = url
    rng = random.Random(seed)
    client = app.client()
    made: dict[str, list[str]] = {k: [] for k in ("ok", "failed", "sleeping", "cancel", "parent")}
    sources = ["orders", "invoices", "clicks", "inventory", "refunds"]
    with app.worker(concurrency=8):
        handles = []
        for i in range(runs):
            kind = rng.random()
            if kind < 0.45:
                h = client.start(nightly_etl, rng.choice(sources), flaky=rng.choice([0, 0, 1, 2]))
                made["ok"].append(h.id)
            elif kind < 0.58:
                h = client.start(nightly_etl, rng.choice(sources), flaky=1, fail=True)
                made["failed"].append(h.id)
            elif kind < 0.75:
                h = client.start(checkout, f"o-{i}", rng.randint(100, 99999))
                made["sleeping"].append(h.id)
            elif kind < 0.85:
                h = client.start(reminder, f"user-{i}", 3600.0)
                made["cancel"].append(h.id)
            elif kind < 0.93:
                h = client.start(gallery, f"album-{i}", rng.randint(2, 4))
                made["parent"].append(h.id)
            else:
                h = client.start(slow_job, 2)
            handles.append(h)
        client.start(hostile, "<script>alert(1)</script>", id="hostile-1")
        deadline = time.monotonic() + 120
        for h in handles:
            while time.monotonic() < deadline:
                st = h.status()
                if st.is_terminal or st == durable.Status.SLEEPING:
                    break
                time.sleep(0.02)
        for rid in made["cancel"][: len(made["cancel"]) // 2]:
            client.cancel(rid)
        for rid in made["sleeping"][::3]:
            client.signal(rid, "shipped", {"carrier": "DHL"})
        time.sleep(1.0)
    made["blocked"] = made["sleeping"][1::3]
    block_waiting(url, made["blocked"])
    nxt = next_release(url)
    try:
        with nxt.worker():
            made["v2"] = [
                nxt.client().start("checkout", f"o-v2-{i}", rng.randint(100, 99999)).id
                for i in range(8)
            ]
            time.sleep(1.0)
    finally:
        nxt.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="the log's URL, e.g. sqlite:///demo.db")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    made = fill(args.database, args.runs)
    print({k: len(v) for k, v in made.items()})


if __name__ == "__main__":
    main()
