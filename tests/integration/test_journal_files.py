"""Exported journal files that ``durable.testing.assert_replays`` cannot use: each is a clear
error naming the file (and the event at fault), raised before any replay; a path with no
journal is an error, never a check of nothing. And the report a pytest run shows."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from harness.processes import run

import durable
from durable import App
from durable.journal_file import dumps
from durable.log.schema import SCHEMA_VERSION
from durable.testing import JournalFileError, assert_replays, env

pytestmark = pytest.mark.timeout(60)

app = App("shop")


@app.step()
def reserve(order: str) -> str:
    return f"{order}:reserved"


@app.workflow()
def checkout(order: str) -> str:
    r = reserve(order)
    if order == "bad":
        raise ValueError(f"cannot ship {r}")
    durable.sleep(86400)
    return r


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    """Exports of a completed and of a failed run (recorded on a temporary log)."""
    with env(app) as t:
        done = t.client.start(checkout, "o-1")
        assert done.result(timeout=10) == "o-1:reserved"
        bad = t.client.start(checkout, "bad")
        with pytest.raises(durable.RunFailedError):
            bad.result(timeout=10)
        return {"done": t.client.export_run(done.id), "bad": t.client.export_run(bad.id)}


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else dumps(doc), encoding="utf-8")
    return path


def bad_file(path: Path, doc: Any) -> str:
    write(path, doc)
    with pytest.raises(JournalFileError) as caught:
        assert_replays(app, path.parent)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message


def edited(doc: dict[str, Any], edit: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(doc))
    edit(copy)
    return copy


def test_good_exports_replay_a_failed_run_fails_again(docs: dict[str, Any], tmp_path: Path) -> None:
    write(tmp_path / "j" / "done.json", docs["done"])
    write(tmp_path / "j" / "bad.json", docs["bad"])
    assert assert_replays(app, tmp_path / "j") == 2

    other = App("shop")  # the failed run's code now raises another error there

    @other.step(name="reserve")
    def reserve2(order: str) -> str:
        return order

    @other.workflow(name="checkout")
    def checkout2(order: str) -> str:
        raise KeyError(reserve2(order))

    with pytest.raises(AssertionError) as caught:
        assert_replays(other, tmp_path / "j" / "bad.json")
    assert (
        "the replayed code raises KeyError: 'bad:reserved', where the run failed with ValueError"
    ) in str(caught.value)


def test_a_truncated_file(docs: dict[str, Any], tmp_path: Path) -> None:
    text = dumps(docs["done"])
    message = bad_file(tmp_path / "j" / "cut.json", text[: len(text) // 2])
    assert "not valid JSON" in message and "line " in message and "truncated" in message


@pytest.mark.parametrize(
    "doc",
    ['{"runs": []}', "[1, 2]", '"durable-journal"', '{"format": 1, "runs": []}'],
    ids=["object", "array", "string", "other-format"],
)
def test_json_that_is_not_an_export(doc: str, tmp_path: Path) -> None:
    message = bad_file(tmp_path / "j" / "other.json", doc)
    assert 'not a journal export (it has no "format": "durable-journal"' in message


def test_an_export_of_a_newer_durable(docs: dict[str, Any], tmp_path: Path) -> None:
    newer = edited(docs["done"], lambda d: d.update(format_version=2))
    message = bad_file(tmp_path / "a" / "f.json", newer)
    assert (
        "exported by a newer durable (journal format version 2; this durable reads up to 1): "
        "upgrade durable"
    ) in message
    newer = edited(docs["done"], lambda d: d.update(schema_version=SCHEMA_VERSION + 1))
    message = bad_file(tmp_path / "b" / "s.json", newer)
    assert (
        f"log schema version {SCHEMA_VERSION + 1}; this durable reads up to {SCHEMA_VERSION})"
    ) in message
    unversioned = edited(docs["done"], lambda d: d.pop("format_version"))
    message = bad_file(tmp_path / "c" / "v.json", unversioned)
    assert "'format_version' must be a whole number from 1, not None" in message


def _drop_event(n: int) -> Any:
    return lambda d: d["events"].pop(n)


def _set_event(n: int, key: str, value: Any) -> Any:
    return lambda d: d["events"][n].update({key: value})


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_set_event(2, "seq", "x"), "Expected `int`, got `str` - at `$.events[2].seq`"),
        (
            lambda d: d["run"].pop("workflow"),
            "Object missing required field `workflow` - at `$.run`",
        ),
        (_drop_event(2), "event 3 has seq 4: the journal must hold every event from seq 1"),
        (_drop_event(-1), "the run's last_seq is"),
        (_set_event(3, "payload", "not base64!"), "event seq 4: 'payload' is not base64"),
        (_set_event(0, "type", "run_teleported"), "event seq 1 has type 'run_teleported'"),
        (lambda d: d["run"].update(status="paused"), "the run's status 'paused' is unknown"),
        (_set_event(3, "payload", "AAAA"), "journal row seq 4 (step_completed) cannot be decoded"),
    ],
    ids=["type", "missing", "gap", "cut", "base64", "event-type", "status", "payload"],
)
def test_a_malformed_export_names_what_is_wrong(
    docs: dict[str, Any], tmp_path: Path, edit: Any, words: str
) -> None:
    assert docs["done"]["events"][3]["type"] == "step_completed"
    message = bad_file(tmp_path / "j" / "x.json", edited(docs["done"], edit))
    assert words in message, message


def test_a_path_without_journals(docs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such does not exist"):
        assert_replays(app, tmp_path / "no-such")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not json")
    with pytest.raises(JournalFileError, match="holds no exported journal"):
        assert_replays(app, tmp_path / "empty")
    write(tmp_path / "mixed" / "a.json", docs["done"])
    bad = write(tmp_path / "mixed" / "sub" / "b.json", "{}")
    with pytest.raises(JournalFileError, match="^" + re.escape(f"{bad}: not a journal export")):
        assert_replays(app, tmp_path / "mixed")
    with pytest.raises(TypeError, match=r"takes a durable\.App, not str"):
        assert_replays("shop", tmp_path / "mixed")  # type: ignore[arg-type]


USER_TESTS = textwrap.dedent(
    """
    import durable
    from durable import App
    from durable.testing import assert_replays

    app = App("shop")


    @app.step()
    def reserve(order: str) -> str:
        return order


    @app.step()
    def fraud(order: str) -> str:
        return order


    @app.workflow()
    def checkout(order: str) -> str:
        r = fraud(reserve(order))
        durable.sleep(86400)
        return r


    def test_golden_journals():
        assert_replays(app, "journals")
    """
)


def test_the_report_in_a_pytest_run(docs: dict[str, Any], tmp_path: Path) -> None:
    """A failing golden-journal test shows the report, not the frames of durable's code."""
    (tmp_path / "test_shop.py").write_text(USER_TESTS)
    write(tmp_path / "journals" / "o-1.json", docs["done"])
    done = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shop.py"],
        cwd=tmp_path,
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=120,
    )
    assert done.returncode == 1, done.describe()
    out = done.stdout
    assert "1 of 1 exported journal no longer replays against the code of App 'shop':" in out
    assert "at position 2: the code calls step 'fraud', the journal holds sleep" in out, out
    assert "journals/o-1.json: run " in out, out
    assert "durable/testing" not in out and "durable/journal_file" not in out, out
