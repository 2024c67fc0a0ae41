"""Testing workflows in milliseconds: ``from durable.testing import env``.

``with env(app) as t:`` runs the App's workflows on a fresh temporary SQLite log, with an
embedded worker of the real engine and a :class:`VirtualClock`: sleeps, signal-wait
timeouts, retry backoffs, delayed starts and workflow deadlines end as soon as the test
waits for a result, instead of in real time. The pytest plugin
(``durable.testing.plugin``, registered by an entry point) gives the ``durable_env`` fixture.
``assert_replays(app, path)`` checks that exported journals (``durable runs export``) still
replay against today's code.
"""

from durable.journal_file import JournalFileError
from durable.testing.clock import VirtualClock
from durable.testing.env import TestEnv, env
from durable.testing.journals import assert_replays

__all__ = ["JournalFileError", "TestEnv", "VirtualClock", "assert_replays", "env"]
