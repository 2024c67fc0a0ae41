"""The event log: where and how runs, journals and signals are stored.

The log speaks of runs, events, leases and signals; it knows nothing of replay.
"""

from durable.log.open import open_store
from durable.log.store import (
    AppendRequest,
    AppendResult,
    JournalRow,
    Lease,
    NewRun,
    RunRow,
    Store,
)

__all__ = [
    "AppendRequest",
    "AppendResult",
    "JournalRow",
    "Lease",
    "NewRun",
    "RunRow",
    "Store",
    "open_store",
]
