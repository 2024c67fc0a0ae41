"""``durable runs watch ID``: follow a run until it ends.

On a terminal: progress bars (the run, each stage, the step in flight) redrawn in place. Into
a pipe: one line per journal event. With ``--json``: one JSON object per line, each event as
``{"event": ...}`` and, at the end, ``{"run": ...}``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

import durable
from durable.cli.context import Context
from durable.cli.errors import CANCELLED, FAILED, OK
from durable.cli.output import (
    dump_json,
    event_dict,
    event_summary,
    fmt_eta,
    fmt_time,
    plural,
    run_dict,
    waits_for,
)

__all__ = ["ProgressView", "bar", "exit_code_of", "runs_watch"]

BAR_WIDTH = 30


def bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """``[#########.....]  60%``; an unknown fraction draws an empty bar without a number."""
    if fraction is None:
        return "[" + "." * width + "]     "
    f = min(max(fraction, 0.0), 1.0)
    filled = round(f * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {f:>4.0%}"


@dataclass
class ProgressView:
    """What the journal says so far about a run's stages, step and messages."""

    stages: dict[str, float | None] = field(default_factory=dict)
    step: str | None = None
    step_progress: float | None = None
    message: str | None = None

    def feed(self, ev: durable.LogEvent) -> None:
        """Take one journal event into account."""
        data = ev.data
        if ev.type == "stage_entered" and ev.name:
            self.stages.setdefault(ev.name, None)
        elif ev.type == "stage_left" and ev.name:
            self.stages[ev.name] = 1.0
        elif ev.type == "progress" and data.get("scope") == "stage" and ev.name:
            self.stages[ev.name] = float(data.get("value", 0.0))
        elif ev.type == "progress" and data.get("scope") == "step":
            self.step_progress = float(data.get("value", 0.0))
        elif ev.type == "step_started":
            attempt = f" (attempt {ev.attempt})" if ev.attempt and ev.attempt > 1 else ""
            self.step, self.step_progress = f"{ev.name}{attempt}", None
        elif ev.type in ("step_completed", "step_failed"):
            self.step, self.step_progress = None, None
        elif ev.type == "message" and data.get("text"):
            self.message = str(data["text"])

    def lines(self, info: durable.RunInfo) -> list[str]:
        """The screen for ``info``: one line per bar, then the status and the last message."""
        run_fraction = 1.0 if info.status is durable.Status.COMPLETED else info.progress
        steps = f"{plural(info.steps_completed, 'step')} done"
        if fmt_eta(info):
            steps += f", {fmt_eta(info)} left"
        out = [f"{info.workflow} {info.id}", f"  run    {bar(run_fraction)}  {steps}"]
        width = max((len(s) for s in self.stages), default=0)
        for name, value in self.stages.items():
            out.append(f"  stage  {bar(value)}  {name:<{width}}")
        if self.step is not None and not info.status.is_terminal:
            out.append(f"  step   {bar(self.step_progress)}  {self.step}")
        status = info.status.value + (f": {info.error}" if info.error else "")
        waiting = waits_for(info)
        if waiting is not None:
            status += f", waiting for {waiting}"
        out.append(f"  status {status}")
        if self.message:
            out.append(f"  last message: {self.message}")
        return out


def exit_code_of(status: durable.Status) -> int:
    """0 for a completed run, 1 for a failed one, 4 for a cancelled one."""
    return {durable.Status.FAILED: FAILED, durable.Status.CANCELLED: CANCELLED}.get(status, OK)


class _Screen:
    """Redraws a block of lines in place on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = 0

    def draw(self, lines: list[str]) -> None:
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F")
        for line in lines:
            self.out.write("\x1b[2K" + line + "\n")
        for _ in range(self.drawn - len(lines)):
            self.out.write("\x1b[2K\n")
        self.drawn = max(self.drawn, len(lines))
        self.out.flush()


def runs_watch(ctx: Context) -> int:
    """``runs watch ID``: follow the run until it ends (its events pushed by the log as they
    are committed, ``Client.watch``); the exit code says how it ended."""
    client = ctx.client()
    run_id = ctx.args.id
    out = sys.stdout
    live = out.isatty() and not ctx.json
    view, screen = ProgressView(), _Screen(out)
    info = client.get(run_id).info()
    if live:
        screen.draw(view.lines(info))
    for ev in client.watch(run_id):
        view.feed(ev)
        if ctx.json:
            dump_json({"event": event_dict(ev)}, out, lines=True)
        elif live:
            screen.draw(view.lines(client.get(run_id).info()))
        else:
            name = f" {ev.name}" if ev.name else ""
            print(f"{fmt_time(ev.at)} {ev.type}{name} {event_summary(ev)}".rstrip(), flush=True)
    info = client.get(run_id).info()
    if live:
        screen.draw(view.lines(info))
    if ctx.json:
        dump_json({"run": run_dict(info)}, out, lines=True)
    elif not live:
        err = f": {info.error}" if info.error else ""
        stopped = info.progress is not None and info.status is not durable.Status.COMPLETED
        at = f" (stopped at {info.progress:.0%})" if stopped else ""
        print(f"run {info.id} {info.status.value}{err}{at}")
    return exit_code_of(info.status)
