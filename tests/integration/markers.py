"""What the tests of running code wait for: marker files left by step bodies in a worker
process, a run's end; and the checks of the whole log once a test is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.processes import Proc
from invariants import assert_journal_invariants, assert_no_stranded_runs

import durable
from durable import Status


def wait_marker(directory: Path, name: str, worker: Proc, timeout: float = 30.0) -> str:
    """Wait (while ``worker`` lives) for the marker file ``name``; its text."""
    path = directory / name
    worker.wait_for(path.exists, timeout, f"the marker {name}")
    return path.read_text()


def wait_ended(client: durable.Client, run_id: str, worker: Proc, timeout: float = 30.0) -> Status:
    """Wait (while ``worker`` lives) for the run to end; its status."""

    def ended() -> Status | None:
        status = client.get(run_id).status()
        return status if status.is_terminal else None

    return worker.wait_for(ended, timeout, f"run {run_id} to end")  # type: ignore[no-any-return]


def types(events: list[Any]) -> list[str]:
    """The types of the events, in order."""
    return [e.type for e in events]


def check_log(client: durable.Client) -> None:
    """G2, G3, G4 on every run of the log: each journal sound, no run stranded."""
    for info in client.list_runs(limit=1000):
        assert_journal_invariants(client, info.id)
    assert_no_stranded_runs(client)
