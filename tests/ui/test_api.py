"""The dashboard's JSON API and pages over HTTP: filters, keyset pages, auth, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import make_demo_log as demo_wf
import pytest
from harness.dashboard import Served, finish

import durable


def test_runs_filters_and_keyset_pages(demo: durable.App, serve: Callable[..., Served]) -> None:
    client = demo.client()
    etl = [client.start(demo_wf.nightly_etl, f"s{i}") for i in range(5)]
    bad = [client.start(demo_wf.nightly_etl, "x", fail=True) for _ in range(2)]
    finish(demo, etl + bad)
    pending = [client.start(demo_wf.hostile, f"h{i}", id=f"later-{i}") for i in range(3)]
    ui = serve()

    status, body, _ = ui.get("/api/runs?status=failed")
    assert status == 200
    got = json.loads(body)
    assert {r["id"] for r in got["runs"]} == {h.id for h in bad}
    assert all(r["status"] == "failed" for r in got["runs"])

    status, body, _ = ui.get("/api/runs?workflow=hostile")
    assert {r["id"] for r in json.loads(body)["runs"]} == {h.id for h in pending}
    status, body, _ = ui.get("/api/runs?id=later-1")
    assert [r["id"] for r in json.loads(body)["runs"]] == ["later-1"]
    status, body, _ = ui.get("/api/runs?queue=etl&status=completed")
    assert {r["id"] for r in json.loads(body)["runs"]} == {h.id for h in etl}

    seen: list[str] = []
    before = None
    while True:
        path = "/api/runs?limit=3" + (f"&before={before}" if before else "")
        page = json.loads(ui.get(path)[1])
        seen += [r["id"] for r in page["runs"]]
        assert len(page["runs"]) <= 3
        before = page["next_before"]
        if before is None:
            break
    assert seen == [r.id for r in client.list_runs(limit=1000)]
    assert len(seen) == len(set(seen)) == 10

    assert ui.get("/api/runs?status=nope")[0] == 400
    assert ui.get("/api/runs?limit=0")[0] == 400
    assert ui.get("/api/runs?before=no-such-run")[0] == 400
    assert ui.get("/api/runs?range=3y")[0] == 400


def test_counts_per_status_under_the_filters(
    demo: durable.App, serve: Callable[..., Served]
) -> None:
    client = demo.client()
    finish(demo, [client.start(demo_wf.nightly_etl, "x", fail=True)])
    for i in range(3):
        client.start(demo_wf.hostile, f"h{i}", id=f"later-{i}")
    ui = serve()
    got = json.loads(ui.get("/api/counts")[1])
    assert got["total"] == 4 and set(got["counts"]) == {s.value for s in durable.Status}
    assert got["counts"]["failed"] == 1 and got["counts"]["pending"] == 3
    got = json.loads(ui.get("/api/counts?workflow=hostile&status=failed")[1])
    assert got["total"] == 3 and got["counts"]["pending"] == 3  # the status is not a filter
    got = json.loads(ui.get(f"/api/counts?version={demo_wf.V1}&id=later-1")[1])
    assert got["total"] == 1
    assert json.loads(ui.get("/api/counts?version=nope")[1])["total"] == 0
    assert ui.get("/api/counts?range=1y")[0] == 400


def test_actions_need_the_token(demo: durable.App, serve: Callable[..., Served]) -> None:
    client = demo.client()
    h = client.start(demo_wf.reminder, "ann", 3600.0)
    ui = serve(token="s3cret-token", embed_token=False)

    status, body = ui.post(f"/api/runs/{h.id}/cancel")
    assert status == 401 and "Bearer" in body["error"]
    status, body = ui.post(f"/api/runs/{h.id}/cancel", Authorization="Bearer wrong")
    assert status == 403
    status, body = ui.post(f"/api/runs/{h.id}/cancel", Origin="https://evil.example", **ui.auth())
    assert status == 403 and "cross-site" in body["error"]
    assert h.status() == durable.Status.PENDING

    status, body = ui.post(f"/api/runs/{h.id}/cancel", **ui.auth())
    assert status == 200 and body["status"] == "cancelled"
    status, body = ui.post(f"/api/runs/{h.id}/resume", **ui.auth())
    assert status == 200 and body["status"] == "pending"
    status, body = ui.post(f"/api/runs/{h.id}/signal", {"name": "go", "payload": [1]}, **ui.auth())
    assert status == 200
    status, body = ui.post(f"/api/runs/{h.id}/fork", {"from_step": 1}, **ui.auth())
    assert status == 200 and client.get(body["id"]).info().workflow == "reminder"
    assert ui.post(f"/api/runs/{h.id}/fork", {"from_step": "1"}, **ui.auth())[0] == 400
    assert ui.post(f"/api/runs/{h.id}/signal", {"payload": 1}, **ui.auth())[0] == 400
    assert ui.post("/api/runs/no-such-run/cancel", **ui.auth())[0] == 404
    assert ui.post(f"/api/runs/{h.id}/explode", **ui.auth())[0] == 404

    # the page of a dashboard with an explicit token does not carry it
    assert b"s3cret-token" not in ui.get(f"/runs/{h.id}")[1]


def test_read_only_refuses_actions(demo: durable.App, serve: Callable[..., Served]) -> None:
    h = demo.client().start(demo_wf.reminder, "bob", 3600.0)
    ui = serve(read_only=True)
    status, body = ui.post(f"/api/runs/{h.id}/cancel", **ui.auth())
    assert status == 403 and "read-only" in body["error"]
    assert h.status() == durable.Status.PENDING
    page = ui.get(f"/runs/{h.id}")[1].decode()
    assert 'data-action="cancel"' not in page and "read-only" in page


def test_unknown_ids_and_pages_are_404_without_traceback(
    demo: durable.App, serve: Callable[..., Served]
) -> None:
    ui = serve()
    for path in ("/api/runs/nope", "/api/runs/nope/events"):
        status, body, headers = ui.get(path)
        assert status == 404 and headers["content-type"].startswith("application/json")
        assert json.loads(body) == {"error": "no run with id 'nope'"}
    status, body, headers = ui.get("/runs/nope%3Cb%3E")
    assert status == 404 and headers["content-type"].startswith("text/html")
    text = body.decode()
    assert "Not found" in text and "Traceback" not in text
    assert "nope<b>" not in text and "nope&lt;b&gt;" in text
    assert ui.get("/nothing-here")[0] == 404
    assert ui.get("/runs?status=%3Cscript%3E")[0] == 400
    assert ui.get("/stats?window=forever")[0] == 400


def test_the_run_page_shows_the_outputs_tree_per_step_call(
    demo: durable.App, serve: Callable[..., Served]
) -> None:
    h = demo.client().start(demo_wf.measured, ["ab", "cde"], id="measured-1")
    finish(demo, [h])
    status, body, _ = serve().get("/runs/measured-1")
    text = body.decode()
    assert status == 200
    tree = text[text.index("<h2>Outputs</h2>") :]
    tree = tree[: tree.index("</section>")]
    # Each call of the step is its node, its own keys and result inside; the workflow's key
    # is a plain entry of the stage.
    assert '<dt class="step-call">measure <span class="tag">step</span></dt>' in tree
    assert '<dt class="step-call">measure#2 <span class="tag">step</span></dt>' in tree
    assert tree.count('<dl class="step-outputs">') == 2
    assert tree.count("<dt>size</dt>") == 2 and tree.count("<dt>result</dt>") == 2
    assert "<dt>total</dt>" in tree
    assert h.outputs() == {
        "measure": {
            "measure": {"size": 2, "result": 20},
            "measure#2": {"size": 3, "result": 30},
            "total": 50,
        }
    }


def test_markup_in_outputs_is_escaped(demo: durable.App, serve: Callable[..., Served]) -> None:
    client = demo.client()
    h = client.start(demo_wf.hostile, "<script>alert(1)</script>", id="<img src=x>")
    finish(demo, [h])
    ui = serve()
    status, body, headers = ui.get("/runs/%3Cimg%20src=x%3E")
    text = body.decode()
    assert status == 200
    assert "<script>alert(1)</script>" not in text and "<img src=x>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "script-src 'self'" in headers["content-security-policy"]
    events = json.loads(ui.get("/api/runs/%3Cimg%20src=x%3E/events")[1])["events"]
    assert events[0]["type"] == "run_started"
    assert ui.get("/api/runs/%3Cimg%20src=x%3E/events?after=x")[0] == 400


def test_overview_pages_answer(demo: durable.App, serve: Callable[..., Served]) -> None:
    client = demo.client()
    done = [client.start(demo_wf.nightly_etl, "a", flaky=1), client.start(demo_wf.gallery, "g", 2)]
    finish(demo, done)
    client.start(demo_wf.nightly_etl, "waiting")
    ui = serve()
    queues = ui.get("/queues")[1].decode()
    assert "etl" in queues and "media" in queues
    stats = ui.get("/stats?window=all")[1].decode()
    assert "nightly_etl" in stats and "Success rate" in stats
    assert "No live worker" in ui.get("/workers")[1].decode()
    assert "No schedule in this log" in ui.get("/schedules")[1].decode()
    runs = ui.get("/")[1].decode()
    assert "gallery" in runs and "resize_one" in runs


def test_workers_page_lists_the_live_workers_and_the_runs_they_hold(
    demo: durable.App, serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "lease_timeout", 0.9)  # heartbeats every 0.3 s
    h = demo.client().start(demo_wf.slow_job, 50)
    ui = serve()
    with demo.worker(worker_id="worker-under-test", queues=["default", "etl"]):
        page = ui.get("/workers")[1].decode()
        assert "worker-under-test" in page and "default, etl" in page
        deadline = time.monotonic() + 20
        while h.id not in page and time.monotonic() < deadline:
            time.sleep(0.1)
            page = ui.get("/workers")[1].decode()
        demo.client().cancel(h.id)
    assert h.id in page  # the run it holds, as its last heartbeat said
    assert "No live worker" in ui.get("/workers")[1].decode()  # it stopped: gone at once


def test_mounted_under_a_path_its_links_follow(
    demo: durable.App, serve: Callable[..., Served]
) -> None:
    h = demo.client().start(demo_wf.reminder, "amy", 3600.0)
    ui = serve(mount="/ops/durable")
    status, body, _ = ui.get("/ops/durable/runs")
    page = body.decode()
    assert status == 200
    assert f'href="/ops/durable/runs/{h.id}"' in page
    assert 'href="/ops/durable/static/style.css"' in page
    assert ui.get("/ops/durable/static/app.js")[0] == 200
    status, answer = ui.post(f"/ops/durable/api/runs/{h.id}/cancel", **ui.auth())
    assert status == 200 and answer["status"] == "cancelled"
    assert ui.get("/ops/durable/api/runs/nope")[0] == 404


def test_a_big_run_page_lists_its_newest_events_and_calls_unless_all(
    demo: durable.App, serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    from durable.ui import run_view

    monkeypatch.setattr(run_view, "SHOWN_EVENTS", 5)
    monkeypatch.setattr(run_view, "SHOWN_CALLS", 1)
    h = demo.client().start(demo_wf.nightly_etl, "orders", id="etl-big")
    finish(demo, [h])
    n = len(h.events())
    ui = serve()
    page = ui.get("/runs/etl-big")[1].decode()
    assert f"The {n - 5} oldest events are not shown" in page
    assert page.count('<tr id="ev-') == 5 and f'<tr id="ev-{n}"' in page
    assert "The 2 first step calls are not shown" in page
    fetch = "fetch(&#34;orders&#34;, 20, 0)"  # as the page escapes it
    assert "publish(" in page and fetch not in page
    assert "2 older outputs are not shown" in page  # one per stage of two
    whole = ui.get("/runs/etl-big?all=1")[1].decode()
    assert whole.count('<tr id="ev-') == n and "not shown" not in whole
    assert fetch in whole and 'data-all="1"' in whole
    assert ui.get("/runs/etl-big?all=yes")[0] == 400


def test_counts_are_kept_for_their_ttl_per_filter_set(demo: durable.App) -> None:
    from durable.ui.counts import CountCache
    from durable.ui.query import RunQuery

    client = demo.client()
    client.start(demo_wf.reminder, "a", 60.0)
    kept = CountCache(client, ttl=3600.0)
    first = kept.get(RunQuery())
    client.start(demo_wf.reminder, "b", 60.0)
    assert kept.get(RunQuery()) is first  # within its ttl: not read again
    assert kept.get(RunQuery(queue="default")).total == 2  # another filter set: read
    assert CountCache(client, ttl=0.0).get(RunQuery()).total == first.total + 1
