"""The test harness itself (``tests/harness``): child processes really started, signalled and
reaped; faults really injected around a real store, on every backend."""

from __future__ import annotations

import ast
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from harness.faults import ANY, Call, Delay, Fail, FaultyStore, Gate, LoseReply, use_store
from harness.processes import ROOT, TESTS, Processes, run, wait_for

import durable
from durable.errors import StoreError
from durable.log import NewRun, Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")

SLEEPER = "import time; print('READY', flush=True); time.sleep(60)"


def _state(pid: int) -> str:
    """The scheduler state of ``pid`` (``T``: stopped), from ``/proc``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


# ---------------------------------------------------------------- processes


def test_a_child_is_watched_stopped_continued_and_killed(processes: Processes) -> None:
    proc = processes.start([sys.executable, "-c", SLEEPER], name="sleeper")
    assert "READY" in proc.wait_for_output("READY", timeout=30)
    proc.stop()
    wait_for(lambda: _state(proc.pid) == "T", 10, "the child to be stopped", proc)
    proc.cont()
    wait_for(lambda: _state(proc.pid) != "T", 10, "the child to run on", proc)
    assert proc.alive
    assert proc.kill() == -signal.SIGKILL
    assert not proc.alive and proc.returncode == -signal.SIGKILL
    assert proc.log_path.parent == processes.log_dir and "READY" in proc.output()
    assert f"pid={proc.pid} rc=-9" in processes.describe()


def test_terminate_waits_and_kills_a_child_that_ignores_sigterm(processes: Processes) -> None:
    polite = processes.start([sys.executable, "-c", SLEEPER], name="polite")
    stubborn_code = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SLEEPER
    stubborn = processes.start([sys.executable, "-c", stubborn_code], name="stubborn")
    for proc in (polite, stubborn):
        proc.wait_for_output("READY", timeout=30)
    assert polite.terminate(timeout=10) == -signal.SIGTERM
    began = time.monotonic()
    assert stubborn.terminate(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - began < 5


def test_close_reaps_every_child_stopped_ones_too(tmp_path: Path) -> None:
    with Processes(tmp_path / "logs") as group:
        running = group.start([sys.executable, "-c", SLEEPER], name="running")
        stopped = group.start([sys.executable, "-c", SLEEPER], name="stopped")
        stopped.wait_for_output("READY", timeout=30)
        stopped.stop()
    assert running.returncode == -signal.SIGKILL and stopped.returncode == -signal.SIGKILL
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == ["0-running.log", "1-stopped.log"]


def test_waits_fail_with_the_childs_output(processes: Processes) -> None:
    quitter = processes.start([sys.executable, "-c", "print('bye from the child')"])
    with pytest.raises(AssertionError, match=r"(?s)ended while waiting for never.*bye from"):
        quitter.wait_for(lambda: False, 30, "never")
    slow = processes.start([sys.executable, "-c", SLEEPER], name="slow")
    slow.wait_for_output("READY", timeout=30)
    with pytest.raises(AssertionError, match=r"(?s)did not end within 0.2s.*READY"):
        slow.wait(0.2)
    assert slow.returncode == -signal.SIGKILL  # killed, not left behind


def test_a_new_session_is_signalled_as_a_whole_group(processes: Processes, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        argv = [sys.executable, "-c", "import time; time.sleep(60)"]
        child = os.posix_spawn(sys.executable, argv, os.environ)
        open({str(pidfile)!r}, "w").write(str(child))
        time.sleep(60)
        """
    )
    parent = processes.start([sys.executable, "-c", script], new_session=True)
    parent.wait_for(lambda: pidfile.exists() and pidfile.read_text(), 30, "the grandchild")
    grandchild = int(pidfile.read_text())
    parent.kill()

    def grandchild_gone() -> bool:
        try:
            return _state(grandchild) == "Z"  # killed, waiting for its reaper (init)
        except FileNotFoundError:
            return True

    wait_for(grandchild_gone, 10, "the grandchild to be killed with its group")


def test_separate_stderr_and_the_environment_of_a_child(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_WORKER_ID", "leaks")
    monkeypatch.setenv("DROPPED", "yes")
    code = (
        "import os, sys; print(os.environ.get('DURABLE_WORKER_ID'), os.environ['EXTRA'],"
        " 'DROPPED' in os.environ, os.environ['PYTHONPATH'].split(os.pathsep)[:2]);"
        " print('oops', file=sys.stderr)"
    )
    proc = processes.start(
        [sys.executable, "-c", code],
        path=[TESTS],
        env={"EXTRA": "x", "DROPPED": None},
        separate_stderr=True,
    )
    done = proc.result(timeout=30)
    assert done.returncode == 0 and done.stderr == "oops\n"
    assert done.stdout == f"None x False {[str(TESTS), str(ROOT)]!r}\n"
    assert proc.errors() == "oops\n" and "oops" not in proc.output()


def test_run_captures_and_times_out() -> None:
    done = run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "")
    assert "rc=3" in done.describe()
    slow = [sys.executable, "-c", "print('started', flush=True); import time; time.sleep(60)"]
    with pytest.raises(AssertionError, match=r"(?s)did not finish within 0.5s.*started"):
        run(slow, timeout=0.5)


def test_a_failed_test_reports_its_childrens_output(tmp_path: Path) -> None:
    """The report hook of ``tests/conftest.py``, in a pytest run of its own."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""
            import importlib.util, sys
            sys.path.insert(0, {str(TESTS)!r})
            spec = importlib.util.spec_from_file_location("suite_conftest", {str(TESTS)!r} + "/conftest.py")
            suite = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(suite)
            processes = suite.processes
            pytest_runtest_makereport = suite.pytest_runtest_makereport
            """  # noqa: E501
        )
    )
    (tmp_path / "test_child.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_fails(processes):
                child = processes.start([sys.executable, "-c", "print('CHILD-SAYS-HI')"])
                child.wait(30)
                assert False, "on purpose"
            """
        )
    )
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    done = run([*argv, "-p", "no:randomly", tmp_path], cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.describe()
    assert "child processes" in done.stdout and "CHILD-SAYS-HI" in done.stdout, done.stdout


SPAWNING_MODULES = {"subprocess", "multiprocessing"}
"""Modules a test reaches processes through only by way of ``harness/processes.py``."""


def _spawning_imports(path: Path) -> list[str]:
    """The imports of :data:`SPAWNING_MODULES` in ``path`` (child scripts in strings aside)."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        hits += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for n in names
            if n.split(".")[0] in SPAWNING_MODULES
        ]
    return hits


def test_only_the_harness_starts_processes() -> None:
    files = [
        p for p in sorted(TESTS.rglob("*.py")) if "harness" not in p.relative_to(TESTS).parts[:1]
    ]
    assert len(files) > 20, files
    hits = [hit for path in files for hit in _spawning_imports(path)]
    assert hits == [], "start processes with tests/harness/processes.py, not directly"


# ---------------------------------------------------------------- faults


def _new(run_id: str) -> NewRun:
    return NewRun(id=run_id, workflow="wf", queue="q", input=b"\x90")


def test_calls_are_delegated_and_recorded(store: Store) -> None:
    faulty = FaultyStore(store)
    row, created = faulty.create_run(_new("r1"))
    assert created and row.id == "r1"
    assert faulty.get_run("r1") == store.get_run("r1")
    [call] = faulty.calls_to("create_run")
    assert (call.method, call.number, call.thread) == ("create_run", 1, "MainThread")
    assert call.arg(0, "run").id == "r1"
    assert [c.method for c in faulty.calls] == ["create_run", "get_run"]
    assert faulty.as_store() is faulty and faulty.inner is store


def test_fail_before_writes_nothing_and_lose_reply_after_writes(store: Store) -> None:
    fail = Fail(StoreError("refused"), times=1, when=lambda c: c.arg(0, "run").id == "b")
    lose = LoseReply(lambda: StoreError("reply lost", transient=True))
    faulty = FaultyStore(store, before={"create_run": fail}, after={"create_run": lose})
    with pytest.raises(StoreError, match="reply lost"):
        faulty.create_run(_new("a"))  # written, then the reply lost (once)
    assert store.get_run("a") is not None
    with pytest.raises(StoreError, match="refused"):
        faulty.create_run(_new("b"))  # refused before the store: nothing written
    assert store.get_run("b") is None
    faulty.create_run(_new("b"))  # each fault fired once: now it goes through
    assert store.get_run("b") is not None
    assert [c.arg(0, "run").id for c in fail.fired] == ["b"]
    assert [c.arg(0, "run").id for c in lose.fired] == ["a"]


def test_around_any_and_delay(store: Store) -> None:
    seen: list[str] = []

    def renamed(call: Call, create_run: object) -> object:
        assert callable(create_run)
        return create_run(NewRun(id="renamed", workflow="wf", queue="q", input=b"\x90"))

    delay = Delay(0.2, when=lambda c: c.method == "get_run")
    faulty = FaultyStore(
        store,
        before={ANY: lambda c: seen.append(c.method), "get_run": delay},
        around={"create_run": renamed},
    )
    faulty.create_run(_new("original"))
    began = time.monotonic()
    assert faulty.get_run("original") is None and faulty.get_run("renamed") is not None
    assert time.monotonic() - began >= 0.4 and len(delay.fired) == 2
    assert seen == ["create_run", "get_run", "get_run"]


def test_a_gate_holds_calls_until_opened(store: Store) -> None:
    gate = Gate()
    faulty = FaultyStore(store, before={"create_run": gate})
    writer = threading.Thread(target=faulty.create_run, args=(_new("held"),), name="writer")
    writer.start()
    assert gate.entered.wait(5)
    time.sleep(0.2)
    assert store.get_run("held") is None and writer.is_alive()
    gate.open()
    writer.join(10)
    assert store.get_run("held") is not None
    assert faulty.calls_to("create_run")[0].thread == "writer"


def test_bad_hooks_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="no method 'apend'"):
        FaultyStore(store, before={"apend": lambda c: None})
    with pytest.raises(ValueError, match="not every one"):
        FaultyStore(store, around={ANY: lambda c, m: None})
    with pytest.raises(ValueError, match="private"):
        FaultyStore(store).on("_private", before=lambda c: None)


def test_use_store_swaps_the_store_of_an_app(db_url: str) -> None:
    app = durable.App("harness", database=db_url)

    @app.workflow(name="anything")
    def anything() -> None:
        return None

    try:
        real = app.store
        faulty = FaultyStore(real)
        with use_store(app, faulty):
            assert app.store is faulty
            app.client().start("anything", id="via-faulty")
        assert app.store is real
        assert [c.method for c in faulty.calls_to("create_run")] == ["create_run"]
        assert real.get_run("via-faulty") is not None
    finally:
        app.close()
