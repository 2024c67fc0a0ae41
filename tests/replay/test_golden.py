"""Today's code against journals recorded earlier (``journals/*.json``, made by ``golden.py``).

- ``client.replay`` of every finished golden run returns the recorded result and executes
  no step body;
- a golden run that was sleeping when recorded is finished by today's worker, executing only
  the steps after the journal's end;
- a journal with a step renamed at one position, or with an outcome the code never asks
  for, raises ``NonDeterminismError`` (and parks a live run ``BLOCKED`` without executing
  anything);
- the dump/load tool is lossless.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import golden
import pytest
from golden_app import Toggles, make_app

import durable

pytestmark = pytest.mark.timeout(60)

FILES = sorted(golden.JOURNALS.glob("*.json"))
NAMES = [p.stem for p in FILES]
UNFINISHED = {"sleeping"}
FINISHED = [n for n in NAMES if n not in UNFINISHED]


def doc_of(name: str) -> dict[str, Any]:
    return golden.read(golden.JOURNALS / f"{name}.json")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/golden.db"


@pytest.fixture
def toggles() -> Toggles:
    return Toggles()


@pytest.fixture
def app(url: str, toggles: Toggles) -> Iterator[durable.App]:
    a = make_app(url, toggles)
    yield a
    a.close()


def main_run(doc: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in doc["runs"] if r["row"]["id"] == doc["main"])


def step_positions(doc: dict[str, Any]) -> list[tuple[int, str]]:
    run = main_run(doc)
    seen: dict[int, str] = {}
    for e in run["events"]:
        if e["type"] == "step_completed":
            seen.setdefault(e["position"], e["name"])
    return sorted(seen.items())


def rename_step(doc: dict[str, Any], position: int, new_name: str) -> dict[str, Any]:
    """A copy of ``doc`` whose main run records another step name at ``position``."""
    out = copy.deepcopy(doc)
    for e in main_run(out)["events"]:
        if e["position"] == position:
            e["name"] = new_name
    return out


def test_every_scenario_has_a_golden_file() -> None:
    assert set(NAMES) == set(golden.SCENARIOS), "run: python tests/replay/golden.py generate"


@pytest.mark.parametrize("name", NAMES)
def test_dump_of_load_is_lossless(name: str, url: str, tmp_path: Path) -> None:
    doc = doc_of(name)
    run_id = golden.load(doc, url)
    store = durable.log.open_store(url)
    try:
        again = golden.dump(store, run_id, doc["scenario"])
    finally:
        store.close()
    for key in ("runs", "main", "scenario", "format"):
        assert again[key] == doc[key]
    path = tmp_path / "again.json"
    golden.write(again, path)
    assert golden.read(path)["runs"] == doc["runs"]


@pytest.mark.parametrize("name", FINISHED)
def test_replay_returns_the_recorded_result_and_runs_no_step(
    name: str, url: str, app: durable.App, toggles: Toggles
) -> None:
    run_id = golden.load(doc_of(name), url)
    client = app.client()
    recorded = client.get(run_id).result(timeout=0)
    assert client.replay(run_id) == recorded
    assert toggles.calls == []
    # Replaying twice changes nothing either: replay writes nothing.
    before = [e.seq for e in client.get(run_id).events()]
    assert client.replay(run_id) == recorded
    assert [e.seq for e in client.get(run_id).events()] == before
    assert toggles.calls == []


def test_recorded_values_come_back_from_the_journal(url: str, app: durable.App) -> None:
    run_id = golden.load(doc_of("pipeline"), url)
    client = app.client()
    result = client.replay(run_id)
    values = {
        e.name: e.data["result"] for e in client.get(run_id).events() if e.type == "value_recorded"
    }
    assert set(values) == {"now", "random", "uuid4"}
    assert result["r"] == values["random"]
    assert result["u"] == str(values["uuid4"])
    assert result == {"a": 5, "b": 15, "c": 16, **{k: result[k] for k in ("when", "r", "u")}}


EXPECTED = {
    "fanout": {"values": [6, 10, 8], "greeting": "hello n5", "total": 24},
    "caught": ["ValueError: refused 3", "PermanentError: forbidden 3", 5],
    "parent": 21,
    "signal": 15,
    "resumed": 22,
    "patched": 1005,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_results_of_the_golden_runs(name: str, url: str, app: durable.App) -> None:
    """What the recorded runs returned, so that a regenerated file is checked too."""
    run_id = golden.load(doc_of(name), url)
    client = app.client()
    assert client.get(run_id).result(timeout=0) == EXPECTED[name]
    assert client.replay(run_id) == EXPECTED[name]


def test_a_sleeping_golden_run_finishes_under_todays_code(
    url: str, app: durable.App, toggles: Toggles
) -> None:
    run_id = golden.load(doc_of("sleeping"), url)
    client = app.client()
    assert client.get(run_id).status() == durable.Status.SLEEPING
    assert client.replay(run_id) is None  # not finished: checked up to the journal's end
    assert toggles.calls == []
    with app.worker(worker_id="today"):
        assert client.get(run_id).result(timeout=20) == 102
    assert toggles.calls == ["add"]  # only the step after the sleep ran
    events = client.get(run_id).events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [
        (e.type, e.position) for e in events if e.type in ("sleep_fired", "step_completed")
    ] == [
        ("step_completed", 1),
        ("sleep_fired", 2),
        ("step_completed", 3),
    ]
    assert client.replay(run_id) == 102


@pytest.mark.parametrize("name", NAMES)
def test_a_renamed_step_is_nondeterminism(
    name: str, url: str, app: durable.App, toggles: Toggles
) -> None:
    position, step = step_positions(doc_of(name))[0]
    run_id = golden.load(rename_step(doc_of(name), position, f"{step}_renamed"), url)
    with pytest.raises(durable.NonDeterminismError) as info:
        app.client().replay(run_id)
    assert str(position) in str(info.value)
    assert toggles.calls == []


# A mismatch raised at the second call of an asyncio.gather leaves the first call's
# coroutine unawaited: Python warns about it.
@pytest.mark.filterwarnings("ignore:coroutine '_ready' was never awaited:RuntimeWarning")
@pytest.mark.parametrize("name", NAMES)
def test_every_step_position_is_checked(name: str, tmp_path: Path, toggles: Toggles) -> None:
    for position, step in step_positions(doc_of(name)):
        url = f"sqlite:///{tmp_path}/p{position}.db"
        run_id = golden.load(rename_step(doc_of(name), position, "not_" + step), url)
        app = make_app(url, toggles)
        try:
            with pytest.raises(durable.NonDeterminismError):
                app.client().replay(run_id)
        finally:
            app.close()
    assert toggles.calls == []


def test_an_unconsumed_outcome_is_nondeterminism(url: str, app: durable.App) -> None:
    """The journal records one more step than today's code calls before returning."""
    doc = copy.deepcopy(doc_of("resumed"))
    events = main_run(doc)["events"]
    done = events[-1]
    assert done["type"] == "run_completed"
    last = max(e["position"] for e in events if e["position"] is not None)
    extra = [
        {**e, "position": last + 1, "seq": 0}
        for e in events
        if e["position"] == last and e["type"] in ("step_started", "step_completed")
    ]
    events[-1:] = [*extra, done]
    for i, e in enumerate(events, start=1):
        e["seq"] = i
    main_run(doc)["row"]["last_seq"] = len(events)
    run_id = golden.load(doc, url)
    with pytest.raises(durable.NonDeterminismError, match="returned"):
        app.client().replay(run_id)


def test_a_live_run_on_a_broken_journal_is_blocked_without_executing(
    url: str, app: durable.App, toggles: Toggles
) -> None:
    """G10: the worker appends run_blocked(NonDeterminismError), runs nothing, and the run
    holds no worker."""
    doc = rename_step(doc_of("sleeping"), 1, "add_v2")
    run_id = golden.load(doc, url)
    client = app.client()
    with app.worker(worker_id="today"):
        deadline = time.monotonic() + 20
        while client.get(run_id).status() is not durable.Status.BLOCKED:
            assert time.monotonic() < deadline, client.get(run_id).info()
            time.sleep(0.02)
    info = client.get(run_id).info()
    assert info.error_type == "NonDeterminismError"
    assert info.blocked_version == app.version
    assert toggles.calls == []
    last = client.get(run_id).events()[-1]
    assert last.type == "run_blocked"
    assert last.data["position"] == 1
    assert last.data["called"] == "step 'add'"
    assert last.data["recorded"] == "step 'add_v2'"
