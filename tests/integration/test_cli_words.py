"""What the ``durable`` command says: counts in agreement, times to the millisecond, what a
waiting run waits for, the error a replay names, and never a database password.

Real subprocesses (the process harness, and the helpers of test_cli.py) on real logs, SQLite
and Postgres.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from harness.processes import Processes, run
from test_cli import COMMAND, PROCS, cliapp, durable_cli, ok_json, one_line_error

import durable
from durable.redact import redact_url, scrub

PASSWORD = "Sekr3t-pw"
MILLIS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


def _with_password(url: str) -> str:
    """``url`` with ``PASSWORD`` as its password (the test server accepts any)."""
    parts = urllib.parse.urlsplit(url)
    user, host = parts.netloc.rsplit("@", 1) if "@" in parts.netloc else ("postgres", parts.netloc)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}"))


def _run_until_status(app: durable.App, workflow: Any, status: durable.Status, **kw: Any) -> str:
    h = app.client().start(workflow, **kw)
    deadline = time.monotonic() + 20
    while h.status() is not status:
        assert time.monotonic() < deadline, h.info()
        time.sleep(0.02)
    return h.id


def _show(db: list[str], run_id: str) -> dict[str, str]:
    r = durable_cli(*db, "runs", "show", run_id)
    assert r.returncode == 0, r.stderr
    fields = {}
    for line in r.stdout.splitlines():
        name, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            fields[name] = value.strip()
    return fields


def test_runs_show_says_what_a_run_waits_for(db_url: str) -> None:
    app = durable.App("waiting", database=db_url, poll_interval=0.1)

    @app.workflow(name="waits")
    def waits() -> Any:
        return durable.wait_signal("approve", timeout=3600)

    @app.workflow(name="naps")
    def naps() -> None:
        durable.sleep(3600)

    @app.workflow(name="parent")
    def parent() -> Any:
        return waits()

    db = ["--database", db_url]
    try:
        with app.worker():
            signal_id = _run_until_status(app, waits, durable.Status.SLEEPING, id="s-1")
            nap_id = _run_until_status(app, naps, durable.Status.SLEEPING, id="n-1")
            parent_id = _run_until_status(app, parent, durable.Status.SLEEPING, id="p-1")
        pending = app.client().start("waits", id="q-1")
        delayed = app.client().start("naps", id="d-1", delay=3600)
    finally:
        app.close()
    shown = _show(db, signal_id)
    assert re.fullmatch(rf"a signal named 'approve' \(or until {MILLIS}\)", shown["waits for"])
    assert re.fullmatch(rf"a time: {MILLIS}", _show(db, nap_id)["waits for"])
    assert _show(db, parent_id)["waits for"].startswith("its child runs to finish")
    assert re.fullmatch(rf"a time: {MILLIS}", _show(db, delayed.id)["waits for"])
    assert _show(db, pending.id)["waits for"] == (
        "a worker of queue 'default' that registers 'waits'"
    )
    assert ok_json(*db, "runs", "show", signal_id)["run"]["waiting_for"] == "signal:approve"


def test_times_are_shown_to_the_millisecond(db_url: str) -> None:
    db = ["--database", db_url]
    assert durable_cli(*db, "start", "waits", "--id", "t-1").returncode == 0
    listed = durable_cli(*db, "runs", "list")
    assert re.search(rf"t-1\s+waits\s+pending\s+default\s+1\s+{MILLIS}", listed.stdout), listed
    events = durable_cli(*db, "runs", "events", "t-1")
    assert re.search(rf"^1\s+{MILLIS}\s+run_started", events.stdout, re.M), events.stdout
    assert re.search(
        rf"^created:\s+{MILLIS}$", durable_cli(*db, "runs", "show", "t-1").stdout, re.M
    )


def _wait_until_serving(url: str) -> None:
    """Until the worker just started on ``url`` has completed a run (its signal handlers are
    in place by then)."""
    r = durable_cli("--database", url, "start", "greet", '["x"]', "--wait", "--timeout", "60s")
    assert r.returncode == 0, r.stderr


def test_counts_agree_with_their_nouns(db_url: str, processes: Processes) -> None:
    proc = processes.start(
        [*COMMAND, "--database", db_url, "worker", "cliapp:changed"],
        name="worker",
        cwd=PROCS,
        separate_stderr=True,
    )
    _wait_until_serving(db_url)
    proc.signal(signal.SIGTERM)
    proc.wait(timeout=60)
    err = proc.errors()
    assert "durable worker: 1 workflow of 'cli'," in err, err
    assert re.search(rf"^{MILLIS} INFO durable: signal 15: draining$", err, re.M), err
    db = ["--database", db_url]
    one = durable_cli(*db, "prune", "--keep-completed", "0", "--dry-run")  # the greet run
    assert one.returncode == 0 and one.stdout.startswith("would delete 1 finished run\n"), one
    none = durable_cli(*db, "prune", "--keep-completed", "1", "--dry-run")
    assert none.returncode == 0 and none.stdout == "would delete 0 finished runs\n", none


def test_a_replay_that_does_not_match_names_the_error(db_url: str) -> None:
    app = cliapp.make_app(db_url)
    try:
        with app.worker():
            run_id = app.client().start("greet", "x").id
            app.client().result(run_id, timeout=20)
    finally:
        app.close()
    r = durable_cli("--database", db_url, "replay", run_id, "--app", "cliapp:changed")
    one_line_error(r, 5, "NonDeterminismError")
    assert f"replay of {run_id} does not match its journal: NonDeterminismError: " in r.stderr


# ---------------------------------------------------------------------------- passwords


def test_redact_url_and_scrub() -> None:
    assert redact_url("postgresql://app:pw%40x@db:5432/shop?sslmode=require") == (
        "postgresql://app:***@db:5432/shop?sslmode=require"
    )
    assert redact_url("postgresql://db/shop?user=app&password=hunter22") == (
        "postgresql://db/shop?user=app&password=***"
    )
    assert redact_url("sqlite:///durable.db") == "sqlite:///durable.db"
    url = "postgresql://app:hunter22@db/shop"
    assert scrub(f"cannot open {url}: password hunter22 refused", url) == (
        "cannot open postgresql://app:***@db/shop: password *** refused"
    )
    assert scrub("a b", "postgresql://app:a@db/x") == "a b"  # a short one only inside a URL


def _chain(exc: BaseException | None) -> str:
    """The messages of ``exc`` and of every error it was raised from or during."""
    texts = []
    while exc is not None:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(texts)


def test_a_password_never_shows_in_errors(tmp_path: Path) -> None:
    refused = f"postgresql://app:{PASSWORD}@127.0.0.1:1/shop"
    unknown = f"postgresx://app:{PASSWORD}@127.0.0.1/shop"
    for url, code in ((refused, 6), (unknown, 2)):
        for debug in ("", "1"):
            r = run(
                [*COMMAND, "--database", url, "runs", "list"],
                cwd=PROCS,
                env={"DURABLE_DEBUG": debug},
                timeout=60,
            )
            assert r.returncode == code, r.stderr
            assert PASSWORD not in r.stdout + r.stderr
            assert r.stderr.strip(), "the error is said"
    for url in (refused, unknown):
        with pytest.raises((durable.DurableError, ValueError)) as info:
            durable.Client(url)
        assert PASSWORD not in _chain(info.value)
        app = durable.App("shop", database=url)
        assert PASSWORD not in repr(app)
        with pytest.raises((durable.DurableError, ValueError)) as info:
            app.client()
        assert PASSWORD not in _chain(info.value)


def test_a_password_never_shows_in_help_or_runs(db_url: str, processes: Processes) -> None:
    url = _with_password(db_url) if db_url.startswith("postgresql") else db_url
    secret_env = {"DURABLE_DATABASE_URL": url}
    for args in (["--help"], ["runs", "--help"], ["worker", "--help"]):
        r = run([*COMMAND, *args], env=secret_env)
        assert r.returncode == 0 and PASSWORD not in r.stdout + r.stderr
    db = ["--database", url]
    outputs = [
        durable_cli(*db, "start", "waits", "--id", "pw-1"),
        durable_cli(*db, "runs", "list"),
        durable_cli(*db, "runs", "show", "pw-1"),
        durable_cli(*db, "runs", "show", "pw-1", "--json"),
        durable_cli(*db, "runs", "events", "pw-1"),
        durable_cli(*db, "runs", "show", "nope"),
        durable_cli(*db, "cancel", "pw-1"),
    ]
    for r in outputs:
        assert PASSWORD not in r.stdout + r.stderr, r
    assert json.loads(outputs[3].stdout)["run"]["id"] == "pw-1"
    proc = processes.start(
        [*COMMAND, *db, "worker", "cliapp:app", "--log-level", "debug"],
        name="worker",
        cwd=PROCS,
        env={**secret_env, "DURABLE_DEBUG": "1"},
        separate_stderr=True,
    )
    _wait_until_serving(url)
    proc.signal(signal.SIGTERM)
    proc.wait(timeout=60)
    out, err = proc.output(), proc.errors()
    assert proc.returncode == 0, err
    assert "durable worker: stopped" in err and PASSWORD not in out + err
