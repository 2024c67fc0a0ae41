"""The dashboard's schedules page in a real headless chromium: every schedule with its
workflow, cron, time zone, next tick, paused state, and a link to its last run."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from harness.dashboard import Served

import durable


def test_the_schedules_page_lists_them_and_links_the_last_run(
    db_url: str, demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    ui = serve()
    page.goto(ui.url + "/schedules")
    assert "No schedule in this log" in page.locator("main").inner_text()

    with durable.Client(db_url) as c:
        c.create_schedule("cleanup", "*/5 * * * *", name="every-five")
        c.create_schedule("report", "30 2 * * *", name="nightly", timezone="Europe/Berlin")
        (last,) = c.backfill("nightly", dt.datetime(2024, 3, 30), dt.datetime(2024, 3, 31, 12))[1:]
        c.pause_schedule("every-five")
    page.goto(ui.url + "/schedules")
    rows = page.locator("#schedules tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => [r.dataset.name, r.dataset.paused])") == [
        ["every-five", "yes"],
        ["nightly", "no"],
    ]
    nightly = page.locator("#schedules tr[data-name=nightly]").inner_text()
    assert "report" in nightly and "30 2 * * *" in nightly and "Europe/Berlin" in nightly
    assert "active" in nightly and "a client" in nightly
    assert re.search(r"\d{4}-\d\d-\d\d 02:30:00\+0[12]:00", nightly)  # the next tick, local
    assert "2024-03-31 03:00:00+02:00" in nightly  # the last run: the tick at the DST jump
    assert "paused" in page.locator("#schedules tr[data-name=every-five]").inner_text()

    page.click("#schedules tr[data-name=nightly] a.last-run")
    page.wait_for_url(re.compile(r"/runs/"))
    assert last.id == "nightly:2024-03-31T03:00:00+02:00"
    assert last.id in page.locator("main").inner_text()
