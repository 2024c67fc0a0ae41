"""``durable.CheckReport``: what ``client.check()`` found when it replayed runs against the
code, run by run (:class:`RunCheck`) and workflow by workflow (:class:`WorkflowCheck`), with
its text for people (:meth:`CheckReport.render`) and for scripts (:meth:`CheckReport.to_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from durable.types import Status

__all__ = ["CheckOutcome", "CheckReport", "RunCheck", "WorkflowCheck"]

CheckOutcome = Literal["replays", "blocks", "fails", "unregistered"]
"""What a worker of the checked code would do with a run: replay it (``"replays"``), park it
``BLOCKED`` (``"blocks"``), fail it or retry it (``"fails"``: the replayed code raises), or
nothing (``"unregistered"``: the App does not register the run's workflow)."""

_OUTCOMES: tuple[CheckOutcome, ...] = ("replays", "blocks", "fails", "unregistered")

_CUT = 60
"""Most characters of a cell of :meth:`CheckReport.render`."""


@dataclass(frozen=True, slots=True)
class RunCheck:
    """What replaying one run against the code found."""

    run_id: str
    """The run's id."""
    workflow: str
    """Its workflow's name."""
    status: Status
    """Its status when the check read it."""
    version: str | None
    """The code version it started under (``None``: started by a client without code)."""
    outcome: CheckOutcome
    """What a worker of the checked code would do with it."""
    position: int | None = None
    """Where the code and the journal part (a run that blocks, when known)."""
    called: str | None = None
    """What the code calls there (``"step 'fraud'"``, ``"return"``), when known."""
    recorded: str | None = None
    """What the journal holds there (``"sleep"``), when known."""
    error_type: str | None = None
    """``"NonDeterminismError"`` for a run that blocks; the exception's type name for one
    whose replayed code raises."""
    message: str | None = None
    """Why, in words (the error's message)."""

    @property
    def blocks(self) -> bool:
        """Whether a worker of the checked code would park the run ``BLOCKED``."""
        return self.outcome == "blocks"

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "version": self.version,
            "outcome": self.outcome,
            "position": self.position,
            "called": self.called,
            "recorded": self.recorded,
            "error_type": self.error_type,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class WorkflowCheck:
    """The verdicts of one workflow's runs, counted."""

    workflow: str
    """The workflow's name."""
    registered: bool
    """Whether the checked App registers it (if not, none of its runs was replayed)."""
    checked: int
    """Runs of it the check looked at."""
    replays: int = 0
    """Of them, runs the code replays."""
    blocks: int = 0
    """Runs a worker of the code would park ``BLOCKED``."""
    fails: int = 0
    """Runs whose replayed code raises."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return {
            "workflow": self.workflow,
            "registered": self.registered,
            "checked": self.checked,
            "replays": self.replays,
            "blocks": self.blocks,
            "fails": self.fails,
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``client.check()`` found: one :class:`RunCheck` per run it looked at."""

    version: str | None
    """The code version the runs were checked against (the App's)."""
    runs: tuple[RunCheck, ...]
    """Every run looked at: the unfinished ones newest first, then the finished ones."""
    jobs: int = 1
    """How many processes replayed them."""
    seconds: float = 0.0
    """How long the check took, from the first read to the last verdict."""

    @property
    def ok(self) -> bool:
        """Whether the code replays every run of a workflow it registers: none would block,
        none would fail. Runs of workflows it does not register do not count."""
        return not any(r.outcome in ("blocks", "fails") for r in self.runs)

    @property
    def blocked(self) -> tuple[RunCheck, ...]:
        """The runs a worker of the code would park ``BLOCKED``."""
        return tuple(r for r in self.runs if r.outcome == "blocks")

    @property
    def failing(self) -> tuple[RunCheck, ...]:
        """The runs whose replayed code raises."""
        return tuple(r for r in self.runs if r.outcome == "fails")

    @property
    def unregistered(self) -> tuple[RunCheck, ...]:
        """The runs of workflows the App does not register (not replayed)."""
        return tuple(r for r in self.runs if r.outcome == "unregistered")

    @property
    def workflows(self) -> tuple[WorkflowCheck, ...]:
        """One summary per workflow, by name."""
        counts: dict[str, dict[str, int]] = {}
        for r in self.runs:
            c = counts.setdefault(r.workflow, dict.fromkeys(("n", *_OUTCOMES), 0))
            c["n"] += 1
            c[r.outcome] += 1
        return tuple(
            WorkflowCheck(
                name,
                registered=c["unregistered"] == 0,
                checked=c["n"],
                replays=c["replays"],
                blocks=c["blocks"],
                fails=c["fails"],
            )
            for name, c in sorted(counts.items())
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values: ``ok``, ``version``, ``jobs``, ``seconds``,
        ``workflows`` (the summaries) and ``runs`` (every verdict)."""
        return {
            "ok": self.ok,
            "version": self.version,
            "jobs": self.jobs,
            "seconds": self.seconds,
            "workflows": [w.to_dict() for w in self.workflows],
            "runs": [r.to_dict() for r in self.runs],
        }

    def render(self) -> str:
        """The report for people: a table of the runs that would block (id, workflow,
        version, position, what the code calls and what the journal holds there), one of
        those that would fail, a summary per workflow, and a closing line."""
        parts: list[str] = []
        if self.blocked:
            parts.append(f"would block ({len(self.blocked)}):")
            parts += _aligned(
                ("RUN", "WORKFLOW", "VERSION", "POSITION", "CODE CALLS", "JOURNAL HOLDS"),
                [
                    (r.run_id, r.workflow, r.version, r.position, r.called, r.recorded)
                    for r in self.blocked
                ],
            )
            parts.append("")
        if self.failing:
            parts.append(f"would fail ({len(self.failing)}):")
            parts += _aligned(
                ("RUN", "WORKFLOW", "VERSION", "ERROR"),
                [
                    (r.run_id, r.workflow, r.version, f"{r.error_type}: {r.message}")
                    for r in self.failing
                ],
            )
            parts.append("")
        if self.runs:
            parts += _aligned(
                ("WORKFLOW", "CHECKED", "REPLAY", "WOULD BLOCK", "WOULD FAIL"),
                [
                    (w.workflow, w.checked, w.replays, w.blocks, w.fails)
                    if w.registered
                    else (w.workflow, w.checked, "-", "-", "- (not registered by this App)")
                    for w in self.workflows
                ],
            )
        parts.append(self._verdict())
        return "\n".join(parts)

    def _verdict(self) -> str:
        n = len(self.runs) - len(self.unregistered)
        runs = "1 run" if n == 1 else f"{n} runs"
        took = f"in {self.seconds:.2f}s" + (f" ({self.jobs} processes)" if self.jobs > 1 else "")
        head = f"checked {runs} against version {self.version} {took}"
        if self.ok:
            return f"{head}: every one replays"
        return f"{head}: {len(self.blocked)} would block, {len(self.failing)} would fail"


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Lines of ``rows`` under ``headers`` in columns (each cell on one line, cut)."""
    text = [list(headers)] + [
        [("" if v is None else str(v)).replace("\n", " ")[:_CUT] for v in row] for row in rows
    ]
    widths = [max(len(line[i]) for line in text) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in text
    ]
