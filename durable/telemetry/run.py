"""One execution of a run as seen by telemetry: the run span (a child of the context stored
with the run), its stage spans, span events for progress and messages, the run's metrics.

One :class:`RunTelemetry` exists per execution attempt (per lease). :data:`NO_RUN` does
nothing: it stands for runs that are only replayed (``client.replay``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from durable.events import BlockedData, ErrorInfo, EventType, Failure, NewEvent
from durable.telemetry import names as n
from durable.telemetry import propagation
from durable.telemetry.logs import RUN_LOG, STEP_LOG, fields
from durable.telemetry.step import StepTelemetry, record_error

if TYPE_CHECKING:
    from durable.log.store import RunRow
    from durable.telemetry.core import Telemetry

__all__ = ["NO_RUN", "RunTelemetry"]

_T = EventType
_INFO = 20
_LEVELS = {n.Outcome.FAILED: _INFO, n.Outcome.BLOCKED: _INFO}
"""The level of the record of a run's execution by its outcome (else debug); the runner
also warns of a blocked run, with the code version that could not replay it."""


class RunTelemetry:
    """The telemetry of one execution of one run."""

    def __init__(
        self,
        telemetry: Telemetry | None,
        row: RunRow | None,
        worker_id: str = "",
        takeover: bool = False,
        *,
        traced: bool = False,
        metered: bool = False,
    ) -> None:
        self.telemetry: Telemetry = telemetry  # type: ignore[assignment]
        self.run_id = row.id if row is not None else ""
        self.workflow = row.workflow if row is not None else ""
        self.worker_id = worker_id
        self.row = row
        self.span: Span | None = None
        self.stage_spans: list[Span] = []
        self.open_steps: set[StepTelemetry] = set()
        self.outcome = n.Outcome.DROPPED
        self.error: ErrorInfo | None = None
        self.metered = metered
        """Step durations and retries are recorded (a meter provider is set)."""
        self.per_step = False
        """Live steps are observed at all: traced, metered, or their records logged."""
        if telemetry is None or row is None:
            return
        self.per_step = traced or metered or STEP_LOG.isEnabledFor(_INFO)
        attrs: dict[str, AttributeValue] = {
            n.RUN_ID: row.id,
            n.WORKFLOW: row.workflow,
            n.QUEUE: row.queue,
            n.RUN_ATTEMPT: row.attempt,
            n.WORKER_ID: worker_id,
        }
        if takeover:
            telemetry.metrics.takeovers.add(1, {n.WORKFLOW: row.workflow, n.QUEUE: row.queue})
            attrs[n.TAKEOVER] = True
        if row.parent_id is not None:
            attrs[n.PARENT_RUN_ID] = row.parent_id
        if traced:
            parent = propagation.decode(row.trace_context)
            self.span = telemetry.tracer.start_span(
                row.workflow, context=parent, kind=SpanKind.CONSUMER, attributes=attrs
            )
        if RUN_LOG.isEnabledFor(10):
            RUN_LOG.debug(
                "run %s (%s) executing%s",
                row.id,
                row.workflow,
                " (taken over from a stalled worker)" if takeover else "",
                extra=self.log_fields(),
            )

    # -- spans -------------------------------------------------------------------------

    def _parent(self) -> Span | None:
        return self.stage_spans[-1] if self.stage_spans else self.span

    def step(
        self, name: str, position: int, attempt: int, stage: str | None
    ) -> StepTelemetry | None:
        """A step attempt starts live; ``None`` when nothing observes steps (no tracing, no
        metrics, step records not logged): nothing is then done per step."""
        if not self.per_step:
            return None
        span = None
        parent = self._parent()
        if parent is not None:
            attrs: dict[str, Any] = {
                n.RUN_ID: self.run_id,
                n.WORKFLOW: self.workflow,
                n.STEP: name,
                n.POSITION: position,
                n.ATTEMPT: attempt,
                n.WORKER_ID: self.worker_id,
            }
            if stage is not None:
                attrs[n.STAGE] = stage
            span = self.telemetry.tracer.start_span(
                f"step {name}", context=trace.set_span_in_context(parent), attributes=attrs
            )
        st = StepTelemetry(self, name, position, attempt, span)
        if span is not None:
            self.open_steps.add(st)
        return st

    def stage_entered(self, name: str) -> None:
        """``durable.stage(name)`` was entered (live)."""
        parent = self._parent()
        if parent is None:
            return
        attrs = {n.RUN_ID: self.run_id, n.WORKFLOW: self.workflow, n.STAGE: name}
        self.stage_spans.append(
            self.telemetry.tracer.start_span(
                f"stage {name}", context=trace.set_span_in_context(parent), attributes=attrs
            )
        )

    def stage_left(self, name: str, exc: BaseException | None) -> None:
        """The stage's block ended (with ``exc`` if an exception left it)."""
        if not self.stage_spans:
            return
        span = self.stage_spans.pop()
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()

    def event(self, name: str, attributes: dict[str, Any], step: StepTelemetry | None) -> None:
        """A span event (``progress``, ``message``) on the step's span, else the stage's,
        else the run's."""
        span = step.span if step is not None and step.span is not None else self._parent()
        if span is not None and span.is_recording():
            span.add_event(name, attributes)

    def child_context(self, workflow: str, child_id: str, fallback: bytes | None) -> bytes | None:
        """The trace context to store with a child run started here: a ``start {workflow}``
        span under the current stage (or the run); without tracing, the parent's own."""
        parent = self._parent()
        self.telemetry.metrics.runs_started.add(1, {n.WORKFLOW: workflow})
        if parent is None:
            return fallback
        span = self.telemetry.tracer.start_span(
            f"start {workflow}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.PRODUCER,
            attributes={n.RUN_ID: child_id, n.WORKFLOW: workflow, n.PARENT_RUN_ID: self.run_id},
        )
        span.end()
        return propagation.encode(trace.set_span_in_context(span, otel_context.Context()))

    # -- the run's end -----------------------------------------------------------------

    def appended(self, events: Sequence[NewEvent]) -> None:
        """The runner committed ``events`` that end this execution (the run ended, or it
        suspends, or a retry of the whole run was scheduled)."""
        if self.telemetry is None or not events:
            return
        last = events[-1]
        m = self.telemetry.metrics
        attrs = {n.WORKFLOW: self.workflow}
        if last.type == _T.RUN_COMPLETED.value:
            self.outcome = n.Outcome.COMPLETED
            m.runs_completed.add(1, attrs)
            self._duration()
        elif last.type == _T.RUN_FAILED.value:
            self.outcome = n.Outcome.FAILED
            self.error = last.data.error if isinstance(last.data, Failure) else None
            m.runs_failed.add(1, attrs)
            self._duration()
        elif last.type == _T.RUN_BLOCKED.value:
            self.outcome = n.Outcome.BLOCKED
            self.error = last.data.error if isinstance(last.data, BlockedData) else None
            m.runs_blocked.add(1, attrs)
        elif last.type == _T.RUN_SUSPENDED.value:
            self.outcome = n.Outcome.SUSPENDED
            if any(e.type == _T.RUN_RETRY_SCHEDULED.value for e in events):
                self.outcome = n.Outcome.RETRY
                m.retries.add(1, {**attrs, "durable.retry.kind": "run"})

    def _duration(self) -> None:
        row = self.row
        assert row is not None
        self.telemetry.metrics.run_duration.record(
            max(time.time() - row.created_at, 0.0),
            {n.WORKFLOW: self.workflow, n.QUEUE: row.queue, n.OUTCOME: self.outcome},
        )

    def ended(self) -> None:
        """This execution is over: close what is still open, end the run span."""
        for st in list(self.open_steps):
            if st.span is not None:
                st.span.set_attribute(n.OUTCOME, "abandoned")
                st.span.end()
        self.open_steps.clear()
        while self.stage_spans:
            self.stage_spans.pop().end()
        span = self.span
        if span is not None:
            span.set_attribute(n.OUTCOME, self.outcome)
            if self.error is not None:
                record_error(span, self.error)
            span.end()
        if self.telemetry is None:
            return
        level = _LEVELS.get(self.outcome, 10)
        if RUN_LOG.isEnabledFor(level):
            RUN_LOG.log(
                level,
                "run %s (%s) %s%s",
                self.run_id,
                self.workflow,
                self.outcome,
                f": {self.error.type}: {self.error.message}" if self.error is not None else "",
                extra=self.log_fields(),
            )

    def log_fields(self) -> dict[str, Any]:
        """The ``extra`` of a record about this run."""
        return fields(self.run_id, self.workflow, worker_id=self.worker_id)


class _NoRun(RunTelemetry):
    """Records nothing: runs that are only replayed, and placeholders."""

    def __init__(self) -> None:
        super().__init__(None, None)

    def child_context(self, workflow: str, child_id: str, fallback: bytes | None) -> bytes | None:
        """The parent's own context."""
        return fallback


NO_RUN: RunTelemetry = _NoRun()
"""The telemetry of a run that nothing observes."""
