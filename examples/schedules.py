"""Schedules: a run per cron tick, whatever the number of workers.

Two schedules: ``heartbeat`` every two seconds (a sixth cron field is seconds), and
``nightly`` at 02:30 in Berlin, which on the night the clocks jump forward (02:30 does not
exist) fires at the jump, 03:00. The script runs an embedded worker until two heartbeats
have run, backfills ``nightly`` over the last week of March 2024, pauses and resumes it, and
prints what happened. Run it: ``python examples/schedules.py`` (``--database URL`` to pick
the log; default a SQLite file in the current folder).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

import durable

# tests/test_examples.py runs every example that defines TEST_ARGS, with a temporary
# database passed as --database URL, and expects exit status 0.
TEST_ARGS: list[str] = []

app = durable.App("schedules-example", poll_interval=0.2)


@app.workflow()
def heartbeat(tick: dt.datetime) -> str:
    """Every tick's run gets its tick first: a timezone-aware datetime."""
    return f"alive at {tick.isoformat()}"


@app.workflow()
def nightly_report(tick: dt.datetime, region: str) -> str:
    """Arguments after the tick come from the schedule's ``args``."""
    return f"report for {region}, tick {tick.isoformat()}"


app.schedule(heartbeat, "* * * * * */2")
app.schedule(nightly_report, "30 2 * * *", name="nightly", timezone="Europe/Berlin", args=("eu",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("DURABLE_DATABASE_URL"))
    app.database = parser.parse_args().database or "sqlite:///schedules-example.db"
    client = app.client()

    with app.worker():  # writes the two schedules to the log, then starts their ticks
        deadline = time.monotonic() + 30
        while len(client.list_runs(workflow=heartbeat, status="completed")) < 2:
            assert time.monotonic() < deadline, "no heartbeat within 30 s"
            time.sleep(0.1)

        for run in client.list_runs(workflow=heartbeat, status="completed")[:2]:
            print(run.id, "->", client.get(run.id).result())

        # The ticks of the last week of March 2024, on Berlin's wall clock: one run each.
        runs = client.backfill("nightly", dt.datetime(2024, 3, 29), dt.datetime(2024, 4, 1))
        for h in runs:
            print(h.id, "->", h.result(timeout=30))
        assert runs[2].id == "nightly:2024-03-31T03:00:00+02:00"  # 02:30 did not exist
        again = client.backfill("nightly", dt.datetime(2024, 3, 31), dt.datetime(2024, 3, 31, 12))
        assert again == [runs[2]]  # a tick keeps its run: the id is derived from it

        client.pause_schedule("heartbeat")  # every worker stops its ticks at once
        for s in client.schedules():
            state = "paused" if s.paused else f"next tick {s.next_tick}"
            print(f"{s.name}: {s.cron} ({s.timezone}), {state}, last run {s.last_run_id}")
        client.resume_schedule("heartbeat")
    app.close()


if __name__ == "__main__":
    main()
