"""The dashboard in a real headless chromium: the version column, a blocked run with its
reason resumed from its page, paging through the runs list by keyset, step arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import make_demo_log as demo_wf
from harness.dashboard import Served, finish, wait_until

import durable


def _ids(page: Any) -> list[str]:
    return [
        i
        for i in page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
        if i
    ]


def _count(page: Any, status: str) -> str:
    page.locator("#counts.counted").wait_for()
    return str(page.locator(f'[data-count="{status}"]').inner_text())


def test_a_blocked_run_shows_its_version_and_reason_and_resumes_from_its_page(
    demo: durable.App, db_url: str, serve: Callable[..., Served], page: Any
) -> None:
    client = demo.client()
    h = client.start(demo_wf.checkout, "o-77", 1200, id="co-77")
    with demo.worker():
        wait_until(lambda: h.status() == durable.Status.SLEEPING, what="the checkout to wait")
    demo_wf.block_waiting(db_url, [h.id])
    plain = durable.Client(db_url)
    plain.start("export_csv", "t-1", id="no-version-run", queue="reports")
    plain.close()
    ui = serve()

    page.goto(ui.url + "/runs")
    row = page.locator('#runs tr[data-id="co-77"]')
    assert row.get_attribute("data-status") == "blocked"
    assert row.locator(".chip.s-blocked").inner_text() == "blocked"
    assert row.locator("td.ver").inner_text() == demo_wf.V1
    assert "#2: calls step 'fraud_check', journal has wait 'shipped'" in (
        row.locator("td.note").inner_text()
    )
    assert page.locator('#runs tr[data-id="no-version-run"] td.ver').inner_text() == "-"
    assert _count(page, "blocked") == "1"

    row.locator("td.ver a").click()  # the version filters the list
    page.wait_for_url(f"**/runs?version={demo_wf.V1}")
    assert _ids(page) == ["co-77"]

    page.goto(f"{ui.url}/runs/co-77")
    banner = page.locator("#blocked")
    assert "Blocked at #2" in banner.inner_text()
    assert banner.locator("code").all_inner_texts() == ["step 'fraud_check'", "wait 'shipped'"]
    assert demo_wf.V2 in banner.locator(".how").inner_text()  # the version that could not
    assert page.locator("svg.timeline rect.bar.k-mismatch.o-blocked").count() == 1
    assert page.locator("svg.timeline rect.bar.k-blocked").count() == 1
    assert page.locator(".journal .evt.t-run_blocked").count() == 1

    resume = page.locator('[data-action="resume"]')
    assert resume.is_enabled()
    resume.click()
    page.click("#confirm-ok")
    page.locator("#toast", has_text="resume: done, the run is pending").wait_for()
    assert h.status() == durable.Status.PENDING
    page.locator("#summary .chip.s-pending").wait_for()  # the live view follows
    assert page.locator("#blocked").count() == 0
    assert page.locator(".journal .evt.t-run_unblocked").count() == 1


def test_paging_through_the_list_by_keyset(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    client = demo.client()
    client.start_many(
        demo_wf.hostile, [f"x{i}" for i in range(7)], ids=[f"p-{i}" for i in range(7)]
    )
    client.start_many(demo_wf.reminder, [("u", 60.0)] * 4, ids=[f"q-{i}" for i in range(4)])
    everything = [r.id for r in client.list_runs(limit=100)]
    ui = serve()

    page.goto(ui.url + "/runs?limit=3")
    seen = [_ids(page)]
    while page.locator("#older").count():
        first_before = len(seen)
        page.click("#older")
        page.wait_for_url("**before=*")
        seen.append(_ids(page))
        assert page.locator("#newest").count() == 1
        assert len(seen) == first_before + 1
    assert [i for p in seen for i in p] == everything
    assert [len(p) for p in seen] == [3, 3, 3, 2]

    # a filtered list pages the same way, the filters kept in the links
    page.goto(ui.url + "/runs?limit=2&workflow=hostile")
    shown = _ids(page)
    while page.locator("#older").count():
        page.click("#older")
        page.wait_for_url("**workflow=hostile**")
        shown += _ids(page)
    assert shown == [f"p-{i}" for i in range(6, -1, -1)]
    page.click("#newest")
    assert _ids(page) == ["p-6", "p-5"]
    assert _count(page, "pending") == "7"


def test_step_arguments_are_shown_as_text(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    markup = '<img src=x onerror="alert(1)">'
    h = demo.client().start(demo_wf.hostile, markup, id="args-1")
    e = demo.client().start(demo_wf.nightly_etl, "orders", flaky=1, id="etl-1")
    finish(demo, [h, e])
    ui = serve()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(f"{ui.url}/runs/args-1")
    assert (
        page.locator("#inputs code.call").inner_text()
        == 'hostile("<img src=x onerror=\\"alert(1)\\">")'
    )
    assert page.locator("#calls code.call").all_inner_texts() == [
        'echo("<img src=x onerror=\\"alert(1)\\">")'
    ]
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []

    page.goto(f"{ui.url}/runs/etl-1")
    assert page.locator("#inputs code.call").inner_text() == 'nightly_etl("orders", flaky=1)'
    rows = page.locator("#calls tbody tr")
    assert rows.locator("code.call").all_inner_texts() == [
        'fetch("orders", 20, 1)',
        "transform([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])",
        'publish({"rows": 20, "total": 190}, false)',
    ]
    assert rows.first.locator("td").nth(3).inner_text() == "2"  # two tries of fetch
    assert rows.locator(".chip").all_inner_texts() == ["completed"] * 3
    rows.first.locator("a").click()  # the position links its first journal row
    page.wait_for_url("**#ev-*")
    assert page.locator(".journal tr:target .evt").inner_text() == "step_started"
