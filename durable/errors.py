"""The error tree of ``durable``.

::

    Exception
     └── DurableError                      every error this library raises on purpose
          ├── NonDeterminismError          the journal no longer matches the workflow code
          ├── RunFailedError               a run ended FAILED (.run_id, .error_type, .error_message)
          ├── RunCancelledError            a run ended CANCELLED
          ├── SerializationError (TypeError)   a value msgspec cannot encode or decode
          │    └── InvalidArgumentError    a start argument that does not fit the annotation
          ├── InvalidOptionError (ValueError)  a run option (timeout, retry) out of range
          ├── UnknownWorkflowError         a workflow name that nothing registers
          ├── RunNotFoundError (LookupError)   no run has that id
          ├── ScheduleNotFoundError (LookupError)   no schedule has that name
          ├── PayloadTooLargeError         an encoded payload above ``max_payload_bytes``
          ├── PermanentError               raised by user steps: fail now, never retry
          │    └── ResourceError           a stage resource asked for where none is declared
          ├── PoolProcessDiedError         a process-pool process died under a step's body
          ├── IdConflictError              a run id already used by another workflow, or
          │                                a schedule name taken by another definition
          ├── QueueFullError               a bounded queue holds its ``max_pending`` runs
          ├── DuplicateRunError            an unfinished run holds that ``dedup_key``
          ├── LogSchemaError               the database is not a durable log, or is newer
          ├── CorruptJournalError          a journal row that cannot be decoded
          ├── NotInRunError                an in-run function called outside a workflow
          ├── StepFailedError              a step failed with an error type that cannot be
          │                                rebuilt on replay (.error_type, .error_message)
          ├── StoreError                   the database failed or refused a statement
          │    └── StoreOpenError (ValueError)   the log at a URL cannot be opened: a bad
          │                                URL, an unreachable server, a missing folder
          └── LeaseLostError               internal: this worker may no longer write a run

    BaseException
     └── _ControlFlow (engine)             suspension and cancellation of a run's code;
                                           never caught by ``except Exception``

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

__all__ = [
    "CorruptJournalError",
    "DuplicateRunError",
    "DurableError",
    "IdConflictError",
    "InvalidArgumentError",
    "InvalidOptionError",
    "LeaseLostError",
    "LogSchemaError",
    "NonDeterminismError",
    "NotInRunError",
    "PayloadTooLargeError",
    "PermanentError",
    "PoolProcessDiedError",
    "QueueFullError",
    "ResourceError",
    "RunCancelledError",
    "RunFailedError",
    "RunNotFoundError",
    "ScheduleNotFoundError",
    "SerializationError",
    "StepFailedError",
    "StoreError",
    "StoreOpenError",
    "StoreUnreachableError",
    "UnknownWorkflowError",
]


class DurableError(Exception):
    """Base class of every error that ``durable`` raises on purpose."""


class NonDeterminismError(DurableError):
    """The workflow code no longer matches the journal of the run being replayed.

    Attributes:
        position: the position where the code and the journal part, if one is at fault.
        called: what the code does there (``"step 'charge'"``, ``"return"``), if known.
        recorded: what the journal holds there, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        called: str | None = None,
        recorded: str | None = None,
    ) -> None:
        super().__init__(message)
        self.position = position
        self.called = called
        self.recorded = recorded


class RunFailedError(DurableError):
    """The awaited run ended ``FAILED``.

    Attributes:
        run_id: the id of the run that failed.
        error_type: the name of the exception type that failed it (e.g. ``"ValueError"``).
        error_message: the exception's message.
    """

    def __init__(self, run_id: str, error_type: str, error_message: str) -> None:
        super().__init__(f"run {run_id!r} failed: {error_type}: {error_message}")
        self.run_id = run_id
        self.error_type = error_type
        self.error_message = error_message

    def __reduce__(self) -> tuple[type[RunFailedError], tuple[str, str, str]]:
        return (type(self), (self.run_id, self.error_type, self.error_message))


class RunCancelledError(DurableError):
    """The awaited run ended ``CANCELLED``."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} was cancelled")
        self.run_id = run_id

    def __reduce__(self) -> tuple[type[RunCancelledError], tuple[str]]:
        return (type(self), (self.run_id,))


class SerializationError(DurableError, TypeError):
    """A value cannot be encoded (or decoded) by msgspec; nothing was written."""


class InvalidArgumentError(SerializationError):
    """An argument of ``client.start`` does not fit the workflow's annotation of its
    parameter; the message names the parameter and the type expected. Nothing was written."""


class InvalidOptionError(DurableError, ValueError):
    """An option of a call is of the wrong kind or out of range: a run's own
    ``client.start(timeout=, retry=)`` (``durable start --run-timeout``; nothing was
    written), or a watch's ``after``, ``types`` or ``timeout``. The message says which and
    what is accepted."""


class UnknownWorkflowError(DurableError):
    """No workflow of that name is registered."""


class RunNotFoundError(DurableError, LookupError):
    """No run has the given id."""


class ScheduleNotFoundError(DurableError, LookupError):
    """No schedule has the given name."""


class PayloadTooLargeError(DurableError):
    """An encoded payload is larger than the App's ``max_payload_bytes``."""


class PermanentError(DurableError):
    """Raised by a step to fail at once: no retry policy applies to it."""


class ResourceError(PermanentError):
    """``durable.resource(name)`` cannot give that resource here: no stage around the step
    declares it, it is called outside a step body, or its stage has ended. It fails the step
    at once (a retry would not find it either)."""


class IdConflictError(DurableError):
    """A run with this id exists and belongs to another workflow; or a schedule with this
    name exists with another definition."""


class QueueFullError(DurableError):
    """A start into a bounded queue (``app.queue(name, max_pending=N)``) that already holds
    ``N`` runs not yet started: nothing was written.

    ``queue`` is the queue's name, ``max_pending`` its limit.
    """

    def __init__(self, queue: str, max_pending: int) -> None:
        self.queue = queue
        self.max_pending = max_pending
        super().__init__(
            f"queue {queue!r} is full: it holds its limit of {max_pending} runs not yet started"
        )

    def __reduce__(self) -> tuple[type[QueueFullError], tuple[str, int]]:
        return (type(self), (self.queue, self.max_pending))


class DuplicateRunError(DurableError):
    """A start with a ``dedup_key`` that a run not finished yet holds: nothing was written.

    ``dedup_key`` is the key, ``run_id`` the id of the unfinished run that holds it (``None``
    if it ended just after it refused the start). The key is free again once that run has
    ended (completed, failed or cancelled).
    """

    def __init__(self, dedup_key: str, run_id: str | None) -> None:
        self.dedup_key = dedup_key
        self.run_id = run_id
        held = f" by run {run_id!r}, which has" if run_id is not None else " by a run that has"
        super().__init__(f"dedup key {dedup_key!r} is held{held} not finished")

    def __reduce__(self) -> tuple[type[DuplicateRunError], tuple[str, str | None]]:
        return (type(self), (self.dedup_key, self.run_id))


class LogSchemaError(DurableError):
    """The database is not a durable log, or was written by a newer version of durable."""


class CorruptJournalError(DurableError):
    """A journal row of a run cannot be decoded."""


class NotInRunError(DurableError, RuntimeError):
    """An in-run function (``durable.stage``, ``durable.sleep``...) was called outside a run."""


class PoolProcessDiedError(DurableError):
    """The pool process running a step body (``executor="process"``) died under it (it
    exited, was killed, ran out of memory): that attempt failed, and the step's ``Retry``
    decides what follows; the pool replaces the process."""


class LeaseLostError(DurableError):
    """This worker no longer holds the lease of a run and may not write to it."""


class StepFailedError(DurableError):
    """A step failed permanently with an exception that durable cannot rebuild on replay.

    Raised into the workflow, live and on replay alike, so that both behave the same.
    """

    def __init__(self, error_type: str, error_message: str) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message

    def __reduce__(self) -> tuple[type[StepFailedError], tuple[str, str]]:
        return (type(self), (self.error_type, self.error_message))


class StoreError(DurableError):
    """The database failed (``transient``: may succeed if tried again) or refused a write."""

    def __init__(self, message: str, *, transient: bool = False, integrity: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.integrity = integrity


class StoreOpenError(StoreError, ValueError):
    """The log at a URL cannot be opened: the URL does not parse, names no supported
    database or an in-memory one, writes its password in a form that does not parse; the
    server cannot be reached or refused the login; or a SQLite file's folder does not exist.

    The message names the URL (its password hidden) or the file, and the cause. A
    ``ValueError`` too, as a bad URL always was.
    """


class StoreUnreachableError(StoreOpenError):
    """The URL is well formed but its database cannot be used now: the server cannot be
    reached, refused the login, or the file cannot be opened. Worth retrying, unlike a bad
    URL; the message names the URL (its password hidden) and the cause."""
