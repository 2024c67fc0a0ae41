"""One live step attempt as seen by telemetry: its span, its duration metric, its log record.

Replayed steps (whose outcome comes from the journal) never get one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from durable.events import ErrorInfo, Failure, NewEvent
from durable.telemetry import names as n
from durable.telemetry.logs import STEP_LOG, fields

if TYPE_CHECKING:
    from durable.telemetry.run import RunTelemetry

__all__ = ["StepTelemetry", "record_error"]

_DEBUG = 10
_INFO = 20


class StepTelemetry:
    """Started when a step attempt starts live; :meth:`ended` once its outcome is known."""

    __slots__ = ("attempt", "name", "position", "run", "span", "t0")

    def __init__(
        self, run: RunTelemetry, name: str, position: int, attempt: int, span: Span | None
    ) -> None:
        self.run = run
        self.name = name
        self.position = position
        self.attempt = attempt
        self.span = span
        self.t0 = time.perf_counter()

    def enter(self) -> object | None:
        """Make the step's span current while its body runs (the body's own spans nest
        under it); returns the token for :meth:`exit`."""
        if self.span is None:
            return None
        return otel_context.attach(trace.set_span_in_context(self.span))

    def exit(self, token: object | None) -> None:
        """Undo :meth:`enter`."""
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def ended(
        self, events: Sequence[NewEvent], exc: BaseException | None, retry_in: float | None = None
    ) -> None:
        """The attempt ended; ``events`` record its outcome (``step_completed``, or
        ``step_failed`` then ``retry_scheduled`` when it will be tried again, ``retry_in``
        seconds later)."""
        seconds = time.perf_counter() - self.t0
        run = self.run
        data = events[0].data
        failure = data if isinstance(data, Failure) else None
        if failure is None:
            outcome = n.Outcome.COMPLETED
        elif isinstance(failure, Failure) and failure.retryable:
            outcome = n.Outcome.RETRY
        else:
            outcome = n.Outcome.FAILED
        if run.metered:
            m = run.telemetry.metrics
            m.step_duration.record(
                seconds, {n.WORKFLOW: run.workflow, n.STEP: self.name, n.OUTCOME: outcome}
            )
            if outcome is n.Outcome.RETRY:
                m.retries.add(1, {n.WORKFLOW: run.workflow, "durable.retry.kind": "step"})
        span = self.span
        if span is not None:
            span.set_attribute(n.OUTCOME, outcome)
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            elif failure is not None:
                record_error(span, failure.error)
            span.end()
            run.open_steps.discard(self)
        level = _DEBUG if failure is None else _INFO
        if STEP_LOG.isEnabledFor(level):
            if outcome is n.Outcome.COMPLETED:
                ended = f"completed after {seconds:.3f}s"
            elif outcome is n.Outcome.RETRY and retry_in is not None:
                ended = f"failed after {seconds:.3f}s; next attempt in {retry_in:.3f}s"
            else:
                ended = f"failed after {seconds:.3f}s"
            STEP_LOG.log(
                level,
                "step %s (position %d, attempt %d) of run %s %s",
                self.name,
                self.position,
                self.attempt,
                run.run_id,
                ended,
                extra=self.log_fields(),
            )

    def log_fields(self) -> dict[str, Any]:
        """The ``extra`` of a record about this attempt."""
        r = self.run
        return fields(
            r.run_id,
            r.workflow,
            step=self.name,
            position=self.position,
            attempt=self.attempt,
            worker_id=r.worker_id,
        )


def record_error(span: Span, err: ErrorInfo) -> None:
    """Record a journaled error on ``span`` as OpenTelemetry records an exception, and mark
    the span's status ERROR."""
    attrs = {"exception.type": err.type, "exception.message": err.message}
    if err.traceback:
        attrs["exception.stacktrace"] = err.traceback
    span.add_event("exception", attrs)
    span.set_status(Status(StatusCode.ERROR, f"{err.type}: {err.message}"))
