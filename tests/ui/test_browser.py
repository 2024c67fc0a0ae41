"""The dashboard in a real headless chromium: filters, the timeline, live progress, actions,
read-only mode, escaping, the 404 page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import make_demo_log as demo_wf
from harness.dashboard import Served, finish, wait_until

import durable


def _statuses(page: Any) -> list[str]:
    return [
        s
        for s in page.locator("#runs tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.status)"
        )
        if s
    ]


def test_list_filters(demo: durable.App, serve: Callable[..., Served], page: Any) -> None:
    client = demo.client()
    runs = [client.start(demo_wf.nightly_etl, f"s{i}") for i in range(3)]
    runs += [client.start(demo_wf.nightly_etl, "x", fail=True) for _ in range(2)]
    finish(demo, runs)
    client.start(demo_wf.reminder, "zed", 3600.0, id="remind-zed")
    ui = serve()

    page.goto(ui.url + "/runs")
    assert sorted(_statuses(page)) == ["completed"] * 3 + ["failed"] * 2 + ["pending"]
    page.locator("#counts.counted").wait_for()  # the counts come from /api/counts
    assert page.locator(".count.s-failed b").inner_text() == "2"

    page.select_option("select[name=status]", "failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"status=failed"))
    assert _statuses(page) == ["failed", "failed"]

    page.goto(ui.url + "/runs")
    page.fill("input[name=workflow]", "reminder")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"workflow=reminder"))
    assert page.locator("#runs tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)") == [
        "remind-zed"
    ]

    page.goto(ui.url + "/runs?id=remind")
    assert _statuses(page) == ["pending"]
    page.goto(ui.url + "/runs?limit=2")
    assert len(_statuses(page)) == 2
    page.click("#older")
    assert len(_statuses(page)) == 2
    page.click("#older")
    assert len(_statuses(page)) == 2 and page.locator("#older").count() == 0


def test_timeline_shows_steps_in_order_and_the_retry(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    client = demo.client()
    h = client.start(demo_wf.nightly_etl, "orders", flaky=1)
    finish(demo, [h])
    ui = serve()
    page.goto(f"{ui.url}/runs/{h.id}")
    labels = page.locator("svg.timeline .lane .label").all_text_contents()
    steps = [t.split()[-1] for t in labels if " step " in f" {t} "]
    assert steps == ["fetch", "transform", "publish"]
    assert labels[0] == "run"
    retried = page.locator("svg.timeline rect.bar.o-retrying")
    assert retried.count() == 1
    assert "step fetch #1, attempt 1" in retried.locator("title").text_content()
    assert "ConnectionError" in retried.locator("title").text_content()
    assert page.locator("svg.timeline rect.bar.o-backoff").count() == 1
    done = page.locator("svg.timeline rect.bar.k-step.o-completed")
    assert done.count() == 3
    titles = done.locator("title").all_text_contents()
    assert "attempt 2" in titles[0]
    assert page.locator(".journal .evt", has_text="step_failed").count() == 1
    assert page.locator(".error").count() == 1


def test_live_progress_moves_without_a_reload(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    client = demo.client()
    h = client.start(demo_wf.slow_job, 6)
    ui = serve()
    page.goto(f"{ui.url}/runs/{h.id}")
    page.evaluate("window.__sameDocument = true")
    with demo.worker():
        seen: set[str] = set()

        def progressed() -> bool:
            bar = page.locator("#summary progress")
            if bar.count():
                seen.add(bar.get_attribute("value") or "")
            return len(seen) >= 3

        wait_until(progressed, 30, "the progress bar to move")
        h.result(timeout=30)
    page.locator("#summary .chip.s-completed").wait_for()
    assert page.evaluate("window.__sameDocument") is True
    # the stream ends after the terminal event: the live marker goes (its own message)
    page.locator("#live-dot").wait_for(state="hidden", timeout=10_000)
    assert page.locator("svg.timeline rect.bar.k-step.o-completed").count() == 6


def test_cancel_and_resume_from_the_page(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    h = demo.client().start(demo_wf.reminder, "kim", 3600.0)
    ui = serve(token="typed-token-1234", embed_token=False)
    page.goto(f"{ui.url}/runs/{h.id}")
    page.click('[data-action="cancel"]')
    page.fill("#token-input", "typed-token-1234")
    page.click("#confirm-ok")
    page.locator("#toast", has_text="the run is cancelled").wait_for()
    wait_until(lambda: h.status() == durable.Status.CANCELLED, what="the run to be cancelled")
    page.locator("#summary .chip.s-cancelled").wait_for()

    page.click('[data-action="resume"]')
    assert page.locator("#token-field").is_hidden()  # remembered for this tab
    page.click("#confirm-ok")
    page.locator("#toast", has_text="resume: done").wait_for()
    wait_until(lambda: h.status() == durable.Status.PENDING, what="the run to be resumed")
    page.locator("#summary .chip.s-pending").wait_for()


def test_bulk_cancel_from_the_list(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    client = demo.client()
    hs = [client.start(demo_wf.reminder, f"u{i}", 3600.0) for i in range(3)]
    ui = serve()
    page.goto(ui.url + "/runs")
    assert page.locator("#bulk").is_hidden()
    page.check(f'input.pick[value="{hs[0].id}"]')
    page.check(f'input.pick[value="{hs[2].id}"]')
    assert page.locator("#bulk-count").inner_text() == "2 selected"
    page.click('[data-bulk="cancel"]')
    page.click("#confirm-ok")
    page.locator("#toast", has_text="cancel: 2 done").wait_for()
    assert [h.status() for h in hs] == [
        durable.Status.CANCELLED,
        durable.Status.PENDING,
        durable.Status.CANCELLED,
    ]


def test_read_only_hides_and_refuses(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    h = demo.client().start(demo_wf.reminder, "lee", 3600.0)
    ui = serve(read_only=True)
    page.goto(f"{ui.url}/runs/{h.id}")
    assert page.locator("[data-action]").count() == 0
    assert page.locator(".pill.ro").inner_text() == "read-only"
    answer = page.evaluate(
        """async ([id, token]) => {
            const r = await fetch(`/api/runs/${id}/cancel`, {method: "POST",
                headers: {"Authorization": "Bearer " + token}});
            return [r.status, (await r.json()).error];
        }""",
        [h.id, ui.token],
    )
    assert answer == [403, "this dashboard is read-only"]
    page.goto(ui.url + "/runs")
    assert page.locator("input.pick").count() == 0
    assert h.status() == durable.Status.PENDING


def test_script_output_shows_as_text(
    demo: durable.App, serve: Callable[..., Served], page: Any
) -> None:
    h = demo.client().start(demo_wf.hostile, "<script>alert(1)</script>")
    finish(demo, [h])
    ui = serve()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{ui.url}/runs/{h.id}")
    shown = page.locator(".tree pre").all_inner_texts()  # the output and the step's result
    assert shown == ['"<script>alert(1)</script>"'] * 2
    assert page.locator("main script").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_unknown_run_is_a_404_page(serve: Callable[..., Served], page: Any) -> None:
    ui = serve()
    response = page.goto(ui.url + "/runs/no-such-run")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "no run with id 'no-such-run'" in page.locator("main").inner_text()
