"""durable: workflows as plain Python functions, journaled to SQLite or Postgres.

See ``docs/`` for how replay works and what the log guarantees.
"""

from durable.app import App, EmbeddedWorker, QueueConfig, WorkerEventInfo
from durable.check_report import CheckReport, RunCheck, WorkflowCheck
from durable.client import AsyncClient, AsyncRunHandle, Client, RunHandle
from durable.consumers import Consumer
from durable.context import (
    cancelled,
    check_cancelled,
    deprecate_patch,
    in_run,
    info,
    message,
    now,
    output,
    patched,
    progress,
    random,
    resource,
    sleep,
    stage,
    start_child,
    uuid4,
    wait_first,
    wait_signal,
)
from durable.engine.children import ChildHandle
from durable.engine.policy import Retry
from durable.errors import (
    CorruptJournalError,
    DuplicateRunError,
    DurableError,
    IdConflictError,
    InvalidArgumentError,
    InvalidOptionError,
    LeaseLostError,
    LogSchemaError,
    NonDeterminismError,
    NotInRunError,
    PayloadTooLargeError,
    PermanentError,
    PoolProcessDiedError,
    QueueFullError,
    ResourceError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    SerializationError,
    StepFailedError,
    StoreError,
    UnknownWorkflowError,
)
from durable.events import EventType
from durable.outputs import StepOutputs
from durable.retention import Retention
from durable.sequences import SequenceFailure
from durable.stats import WorkflowStats
from durable.types import CancelOutcome, LogEvent, RunInfo, Status, WorkerEvent, WorkerInfo

__all__ = [
    "App",
    "AsyncClient",
    "AsyncRunHandle",
    "CancelOutcome",
    "CheckReport",
    "ChildHandle",
    "Client",
    "Consumer",
    "CorruptJournalError",
    "DuplicateRunError",
    "DurableError",
    "EmbeddedWorker",
    "EventType",
    "IdConflictError",
    "InvalidArgumentError",
    "InvalidOptionError",
    "LeaseLostError",
    "LogEvent",
    "LogSchemaError",
    "NonDeterminismError",
    "NotInRunError",
    "PayloadTooLargeError",
    "PermanentError",
    "PoolProcessDiedError",
    "QueueConfig",
    "QueueFullError",
    "ResourceError",
    "Retention",
    "Retry",
    "RunCancelledError",
    "RunCheck",
    "RunFailedError",
    "RunHandle",
    "RunInfo",
    "RunNotFoundError",
    "SequenceFailure",
    "SerializationError",
    "Status",
    "StepFailedError",
    "StepOutputs",
    "StoreError",
    "UnknownWorkflowError",
    "WorkerEvent",
    "WorkerEventInfo",
    "WorkerInfo",
    "WorkflowCheck",
    "WorkflowStats",
    "cancelled",
    "check_cancelled",
    "deprecate_patch",
    "in_run",
    "info",
    "message",
    "now",
    "output",
    "patched",
    "progress",
    "random",
    "resource",
    "sleep",
    "stage",
    "start_child",
    "uuid4",
    "wait_first",
    "wait_signal",
]

__version__ = "0.1.0"
