"""How a run proceeds: replay, execution, leases, retries. No SQL, no argv.

:func:`replay_run` is the engine's entry point for ``client.replay``; workers are
:class:`~durable.engine.worker.Worker`.
"""

from durable.engine.replaying import replay_run

__all__ = ["replay_run"]
