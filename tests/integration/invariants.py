"""Journal invariants of GUARANTEES.md (G2, G3, G4), checked through the public client only.

Every test that injects a fault calls these afterwards::

    from invariants import assert_journal_invariants, assert_no_stranded_runs

    events = assert_journal_invariants(client, run_id)   # one run; returns its journal
    assert_no_stranded_runs(client)                      # every run of the log is terminal

``client`` is anything with the ``durable.Client`` surface (``get(id)`` -> handle with
``events()`` and ``info()``, ``list_runs(limit=...)``), e.g. ``durable.Client(url)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

__all__ = [
    "OUTCOME_GROUPS",
    "TERMINAL_EVENTS",
    "assert_journal_invariants",
    "assert_no_stranded_runs",
    "format_journal",
    "outcome_group",
]

# An outcome event settles its position (G4): at most one per (position, group). A step's
# group holds both ``step_completed`` and the permanent ``step_failed``; a child's start and
# its end are distinct outcomes of the same position.
OUTCOME_GROUPS: dict[str, str] = {
    "step_completed": "step",
    "sleep_fired": "sleep",
    "signal_received": "signal",
    "child_started": "child_started",
    "child_completed": "child_outcome",
    "child_failed": "child_outcome",
    "value_recorded": "value",
    "first_finished": "first",
}

TERMINAL_EVENTS: dict[str, str] = {
    "run_completed": "completed",
    "run_failed": "failed",
    "run_cancelled": "cancelled",
}

_TERMINAL_STATUSES = frozenset(TERMINAL_EVENTS.values())


def outcome_group(event: Any) -> str | None:
    """The outcome group of a journal event, or None when it settles no position."""
    if event.type == "step_failed":
        # A retryable failure is followed by retry_scheduled; only the final one is an outcome.
        data = event.data or {}
        return None if data.get("retryable", False) else "step"
    return OUTCOME_GROUPS.get(event.type)


def format_journal(events: Sequence[Any]) -> str:
    """One line per event, for assertion messages."""
    return "\n".join(
        f"  seq={e.seq:<3} epoch={e.epoch:<3} pos={e.position!s:<4} "
        f"att={e.attempt!s:<4} {e.type:<20} {e.name or ''}"
        for e in events
    )


def _status_value(status: Any) -> str:
    return str(getattr(status, "value", status))


def assert_journal_invariants(client: Any, run_id: str, *, terminal: bool = True) -> list[Any]:
    """Check G3/G4 on one run's journal (and, with ``terminal``, that the run has ended).

    - ``seq`` is gapless from 1 and the journal opens with ``run_started``;
    - a position has at most one outcome event per outcome group (``step_completed`` or a
      permanent ``step_failed``, ``sleep_fired``, ``signal_received``, ...), and every outcome
      event names its position;
    - epochs are non-decreasing in ``seq`` order (no append from a fenced-off writer);
    - at most one ``run_completed``; when present, it is the last event;
    - the runs row agrees with the journal: a terminal status has the matching terminal event
      last, a non-terminal status does not end in a terminal event;
    - with ``terminal=True`` (the default), the run is not left non-terminal (G2).

    Returns the journal, oldest first.
    """
    handle = client.get(run_id)
    events = list(handle.events())
    info = handle.info()
    status = _status_value(info.status)
    journal = format_journal(events)
    where = f"run {run_id} (status {status}):\n{journal}"

    assert events, f"run {run_id} has an empty journal"
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"seq is not gapless from 1 in {where}"
    assert events[0].type == "run_started", f"the journal does not open with run_started: {where}"

    settled: dict[tuple[int, str], int] = {}
    for event in events:
        group = outcome_group(event)
        if group is None:
            continue
        assert event.position is not None, (
            f"outcome event seq={event.seq} ({event.type}) has no position in {where}"
        )
        key = (event.position, group)
        assert key not in settled, (
            f"position {event.position} has two {group} outcomes (seq {settled[key]} and "
            f"seq {event.seq}) in {where}"
        )
        settled[key] = event.seq

    for before, after in pairwise(events):
        assert after.epoch >= before.epoch, (
            f"epoch goes back from {before.epoch} (seq {before.seq}) to {after.epoch} "
            f"(seq {after.seq}): a stale writer appended in {where}"
        )

    completed = [e.seq for e in events if e.type == "run_completed"]
    assert len(completed) <= 1, f"{len(completed)} run_completed events in {where}"
    if completed:
        assert completed[0] == events[-1].seq, f"events follow run_completed in {where}"

    last = events[-1]
    if status in _TERMINAL_STATUSES:
        assert TERMINAL_EVENTS.get(last.type) == status, (
            f"status {status} but the last event is {last.type} in {where}"
        )
    else:
        assert last.type not in TERMINAL_EVENTS, (
            f"status {status} but the journal ends with {last.type} in {where}"
        )
    if terminal:
        assert status in _TERMINAL_STATUSES, f"run left non-terminal: {where}"
    return events


def assert_no_stranded_runs(client: Any, *, limit: int = 100_000) -> None:
    """Every run in the log has ended: none is left pending, running or sleeping (G2)."""
    runs = client.list_runs(limit=limit)
    open_runs = [
        (r.id, _status_value(r.status))
        for r in runs
        if _status_value(r.status) not in _TERMINAL_STATUSES
    ]
    assert not open_runs, f"runs left non-terminal: {open_runs}"
