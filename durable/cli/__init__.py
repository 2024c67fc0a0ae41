"""The ``durable`` command line: ``durable --help`` lists the commands.

One module per idea: ``parser`` (the arguments), ``context`` (the client a command uses),
``errors`` (exit codes), ``loading`` (MODULE:APP, JSON, durations), ``output`` (tables and
JSON), ``watch`` (live progress), and the commands by noun: ``runs``, ``manage``, ``ops``.
The commands use the public ``durable.Client`` and ``durable.App``, and one private switch of
the App (``App._create_log``): a read-only command refuses a log that does not exist instead of
creating an empty one (``Client(url, create=False)`` does the same without an App).
"""

from __future__ import annotations

from durable.cli.main import main

__all__ = ["main"]
