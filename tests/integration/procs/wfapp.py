"""The workflows that the worker processes of ``test_processes.py`` run.

Each workflow receives a directory (its *fixture directory*) as its first input. The step
bodies leave their side effects there, so that the test, in another process, can count how
often each body ran, in which process, and when:

- ``{dir}/{step}.log``: one JSON line per execution of a step body: ``pid``, ``key``
  (``durable.info().step_key``), ``t`` (wall-clock start);
- ``{dir}/b.marker.{pid}``: created once ``step_b`` runs in process ``pid``, before it blocks;
- ``{dir}/b.done``: one JSON line per ``step_b`` body that got past its block;
- ``{dir}/spans-{tag}.jsonl``: one JSON line per execution of ``span``: ``pid``, ``run``,
  ``step``, ``position``, ``start``, ``end``.

``step_b`` blocks while ``{dir}/block`` or ``{dir}/block.{pid}`` exists (at most
``BLOCK_LIMIT`` seconds, so that a forgotten process ends by itself).

Workflow and step names are explicit, because the App is built inside ``make_app``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import durable

BLOCK_LIMIT = 60.0


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line with a single O_APPEND write (whole lines even across processes)."""
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of a file written by ``append_line`` ([] if it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _record(directory: str, step: str) -> str:
    info = durable.info()
    append_line(
        Path(directory) / f"{step}.log",
        {"pid": os.getpid(), "key": info.step_key, "t": time.time()},
    )
    return f"{step}:{os.getpid()}"


def make_app(database: str, lease_timeout: float = 30.0, poll_interval: float = 0.2) -> durable.App:
    """An App on ``database`` that registers every workflow of the process tests."""
    app = durable.App(
        "procs", database=database, lease_timeout=lease_timeout, poll_interval=poll_interval
    )

    @app.step(name="step_a")
    def step_a(directory: str) -> str:
        return _record(directory, "a")

    @app.step(name="step_b")
    def step_b(directory: str) -> str:
        result = _record(directory, "b")
        pid = os.getpid()
        (Path(directory) / f"b.marker.{pid}").touch()
        blocks = (Path(directory) / "block", Path(directory) / f"block.{pid}")
        deadline = time.monotonic() + BLOCK_LIMIT
        while any(p.exists() for p in blocks) and time.monotonic() < deadline:
            time.sleep(0.01)
        append_line(Path(directory) / "b.done", {"pid": pid, "t": time.time()})
        return result

    @app.step(name="step_c")
    def step_c(directory: str) -> str:
        return _record(directory, "c")

    @app.workflow(name="three_steps")
    def three_steps(directory: str) -> str:
        """step_a, then step_b (which blocks while ``block`` exists), then step_c."""
        a = step_a(directory)
        b = step_b(directory)
        c = step_c(directory)
        return f"{a}|{b}|{c}"

    @app.workflow(name="sleepy")
    def sleepy(directory: str, seconds: float) -> str:
        """step_a, a durable sleep, step_c."""
        a = step_a(directory)
        durable.sleep(seconds)
        c = step_c(directory)
        return f"{a}|{c}"

    @app.step(name="span")
    def span(directory: str, tag: int, step: int, hold: float) -> int:
        info = durable.info()
        start = time.time()
        time.sleep(hold)
        end = time.time()
        append_line(
            Path(directory) / f"spans-{tag}.jsonl",
            {
                "pid": os.getpid(),
                "run": info.id,
                "step": step,
                "position": info.step_position,
                "start": start,
                "end": end,
            },
        )
        return step

    @app.workflow(name="spans")
    def spans(directory: str, tag: int, steps: int, hold: float) -> int:
        """``steps`` steps in order, each holding for ``hold`` seconds and logging its span."""
        total = 0
        for step in range(steps):
            total += span(directory, tag, step, hold)
        return total

    return app
