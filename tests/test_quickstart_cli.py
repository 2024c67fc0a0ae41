"""The first minutes of a new user: the quickstart, then the ``durable`` command, in a shell.

Real processes on real logs: the quickstart's own default (a SQLite file in the current
directory, which the command reads too), and SQLite or Postgres named by
``DURABLE_DATABASE_URL`` (the ``db_url`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from harness.processes import Finished, Processes, run

import durable

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"
SCRIPT = Path(sys.executable).parent / "durable"
DURABLE = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "durable.cli"]


def _env(db_url: str | None) -> dict[str, str | None] | None:
    """What a child's environment adds to the harness's (which has no ``DURABLE_*``)."""
    return None if db_url is None else {"DURABLE_DATABASE_URL": db_url}


def _run(cmd: list[str], cwd: Path, db_url: str | None) -> Finished:
    return run(cmd, cwd=cwd, env=_env(db_url), timeout=120)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A new user's folder, with the quickstart copied in (as ``examples/quickstart.py``)."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "quickstart.py").write_text(QUICKSTART.read_text())
    return tmp_path


def test_durable_runs_list_finds_the_quickstart_run_by_default(user_dir: Path) -> None:
    done = _run([sys.executable, "examples/quickstart.py", "--step-seconds", "0"], user_dir, None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "database: sqlite:///durable.db" in done.stdout
    assert (user_dir / "durable.db").exists()
    assert (user_dir / "durable.db.steps.jsonl").exists()
    assert "`durable runs show quickstart-1`" in done.stdout, done.stdout
    listed = _run([*DURABLE, "runs", "list"], user_dir, None)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"quickstart-1\s+etl_pipeline\s+completed", listed.stdout), listed.stdout
    shown = _run([*DURABLE, "runs", "show", "quickstart-1"], user_dir, None)
    assert shown.returncode == 0 and "completed" in shown.stdout, shown.stdout + shown.stderr


def test_the_quickstart_and_the_command_read_the_same_environment(
    user_dir: Path, db_url: str
) -> None:
    done = _run([sys.executable, "examples/quickstart.py", "--step-seconds", "0"], user_dir, db_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "`durable runs show quickstart-1`" in done.stdout, done.stdout
    listed = _run([*DURABLE, "runs", "list", "--json"], user_dir, db_url)
    assert listed.returncode == 0, listed.stderr
    assert '"id": "quickstart-1"' in listed.stdout


def test_an_explicit_database_is_in_the_command_it_prints(user_dir: Path, db_url: str) -> None:
    cmd = [sys.executable, "examples/quickstart.py", "--database", db_url, "--step-seconds", "0"]
    done = _run(cmd, user_dir, None)
    assert done.returncode == 0, done.stdout + done.stderr
    m = re.search(r"`(durable --database \S+) runs show quickstart-1`", done.stdout)
    assert m is not None, done.stdout
    words = shlex.split(m.group(1))  # durable --database URL
    shown = _run([*DURABLE, *words[1:], "runs", "show", "quickstart-1"], user_dir, None)
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout


@pytest.mark.timeout(240)
def test_after_a_complete_run_the_tip_shows_a_crash_and_a_resume_again(
    user_dir: Path, db_url: str, processes: Processes
) -> None:
    first = _run(
        [sys.executable, "examples/quickstart.py", "--step-seconds", "0"], user_dir, db_url
    )
    assert first.returncode == 0, first.stdout + first.stderr

    again = _run([sys.executable, "examples/quickstart.py"], user_dir, db_url)
    assert again.returncode == 0, again.stdout + again.stderr
    m = re.search(r"already completed.*run `(python [^`]*--fresh)`", again.stdout)
    assert m is not None, again.stdout

    # The tip: start a fresh run, kill it, then run the command it prints.
    fresh_cmd = [*shlex.split(m.group(1))[1:], "--step-seconds", "0.3"]
    proc = processes.start(
        [sys.executable, *fresh_cmd],
        name="fresh",
        cwd=user_dir,
        env=_env(db_url),
        new_session=True,
    )
    pattern = r"tip: .* run `(python [^`]*)` to resume run (quickstart-\w+)"
    tip = proc.wait_for(lambda: re.search(pattern, proc.output()), 60, "the tip")
    resume_cmd, run_id = shlex.split(tip.group(1)), tip.group(2)
    assert run_id != "quickstart-1" and resume_cmd[-2:] == ["--id", run_id], tip.group(0)
    with durable.Client(db_url) as client:
        proc.wait_for(
            lambda: sum(e.type == "step_completed" for e in client.events(run_id)) >= 2,
            60,
            "two completed steps",
        )
        proc.kill()  # SIGKILL to its whole process group
        assert client.get(run_id).status() is not durable.Status.COMPLETED

    resumed = _run([sys.executable, *resume_cmd[1:]], user_dir, db_url)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run_id}: resumed run" in resumed.stdout, resumed.stdout
    assert "replayed steps executed again: 0" in resumed.stdout, resumed.stdout
    assert f"run {run_id} completed" in resumed.stdout, resumed.stdout
    with durable.Client(db_url) as client:
        assert {i.id for i in client.list_runs()} == {"quickstart-1", run_id}


def test_the_side_file_is_ignored_by_git_like_the_database() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "*.db" in ignored and "*.steps.jsonl" in ignored
