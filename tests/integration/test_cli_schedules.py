"""``durable schedules ...`` run for real in subprocesses, on SQLite and Postgres: list,
pause, resume, trigger, backfill and delete, their ``--json``, and one-line errors."""

from __future__ import annotations

from test_cli import durable_cli, ok_json, one_line_error

import durable


def test_schedules_commands(db_url: str) -> None:
    db = ["--database", db_url]
    with durable.Client(db_url) as c:
        c.create_schedule("report", "0 3 * * *", name="nightly", timezone="Europe/Berlin")
    r = durable_cli(*db, "schedules", "list")
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "WORKFLOW", "CRON", "TIMEZONE"]
    assert row.split()[:2] == ["nightly", "report"] and "Europe/Berlin" in row

    (listed,) = ok_json(*db, "schedules", "list")
    assert (listed["name"], listed["cron"], listed["paused"], listed["in_code"]) == (
        "nightly",
        "0 3 * * *",
        False,
        False,
    )
    assert ok_json(*db, "schedules", "pause", "nightly")["paused"] is True
    assert ok_json(*db, "schedules", "resume", "nightly")["paused"] is False

    runs = ok_json(*db, "schedules", "backfill", "nightly", "2024-03-30", "2024-04-01T12:00")
    assert [x["id"] for x in runs] == [
        "nightly:2024-03-30T03:00:00+01:00",
        "nightly:2024-03-31T03:00:00+02:00",
        "nightly:2024-04-01T03:00:00+02:00",
    ]
    r = durable_cli(*db, "schedules", "backfill", "nightly", "2024-03-30", "2024-03-31")
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "1 tick of schedule nightly"

    triggered = ok_json(*db, "schedules", "trigger", "nightly")
    assert triggered["id"].startswith("nightly:") and triggered["status"] == "pending"
    assert ok_json(*db, "schedules", "list")[0]["last_run_id"] == triggered["id"]

    one_line_error(
        durable_cli(*db, "schedules", "backfill", "nightly", "2024-04-01", "2024-03-01"),
        2,
        "is after end",
    )
    one_line_error(
        durable_cli(*db, "schedules", "backfill", "nightly", "2020-01-01", "2024-01-01"),
        2,
        "more than 1000 ticks",
    )
    one_line_error(durable_cli(*db, "schedules", "trigger", "nope"), 3, "no schedule named")
    assert durable_cli(*db, "schedules", "backfill", "nightly", "soon", "later").returncode == 2

    assert ok_json(*db, "schedules", "delete", "nightly") == {"deleted": "nightly"}
    r = durable_cli(*db, "schedules", "list")
    assert r.returncode == 0 and r.stdout.strip() == "no schedule in the log"
    one_line_error(durable_cli(*db, "schedules", "pause", "nightly"), 3, "no schedule named")
    with durable.Client(db_url) as c:
        assert len(c.list_runs()) == 4  # the runs stay
