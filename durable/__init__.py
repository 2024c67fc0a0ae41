"""durable: workflows as plain Python functions, journaled to SQLite or Postgres.

See ``docs/`` for how replay works and what the log guarantees.
"""

from durable.app import App, EmbeddedWorker, QueueConfig, WorkerEventInfo
from durable.client import AsyncClient, AsyncRunHandle, Client, RunHandle
from durable.context import (
    in_run,
    info,
    message,
    now,
    output,
    progress,
    random,
    sleep,
    stage,
    uuid4,
    wait_signal,
)
from durable.engine.policy import Retry
from durable.errors import (
    CorruptJournalError,
    DurableError,
    IdConflictError,
    InvalidArgumentError,
    LeaseLostError,
    LogSchemaError,
    NonDeterminismError,
    NotInRunError,
    PayloadTooLargeError,
    PermanentError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    SerializationError,
    StepFailedError,
    StoreError,
    UnknownWorkflowError,
)
from durable.events import EventType
from durable.retention import Retention
from durable.stats import WorkflowStats
from durable.types import LogEvent, RunInfo, Status, WorkerEvent

__all__ = [
    "App",
    "AsyncClient",
    "AsyncRunHandle",
    "Client",
    "CorruptJournalError",
    "DurableError",
    "EmbeddedWorker",
    "EventType",
    "IdConflictError",
    "InvalidArgumentError",
    "LeaseLostError",
    "LogEvent",
    "LogSchemaError",
    "NonDeterminismError",
    "NotInRunError",
    "PayloadTooLargeError",
    "PermanentError",
    "QueueConfig",
    "Retention",
    "Retry",
    "RunCancelledError",
    "RunFailedError",
    "RunHandle",
    "RunInfo",
    "RunNotFoundError",
    "SerializationError",
    "Status",
    "StepFailedError",
    "StoreError",
    "UnknownWorkflowError",
    "WorkerEvent",
    "WorkerEventInfo",
    "WorkflowStats",
    "in_run",
    "info",
    "message",
    "now",
    "output",
    "progress",
    "random",
    "sleep",
    "stage",
    "uuid4",
    "wait_signal",
]

__version__ = "0.1.0"
