"""The App that the command-line tests run: ``durable worker cliapp:app`` from this folder.

``app`` and ``changed`` register a workflow of the same name; ``changed`` calls another step,
so that ``durable replay --app cliapp:changed`` finds the journal no longer matches.
"""

from __future__ import annotations

import time
from typing import Any

import durable


def make_app(database: str | None = None) -> durable.App:
    """An App with the workflows the CLI tests start."""
    app = durable.App("cli", database=database, poll_interval=0.1)

    @app.step(name="shout")
    def shout(name: str) -> str:
        durable.progress(0.5)
        time.sleep(0.2)
        return name.upper()

    @app.workflow(name="greet")
    def greet(name: str, punctuation: str = "!") -> str:
        with durable.stage("prepare"):
            loud = shout(name)
            durable.progress(0.5)
            durable.message("shouted")
            durable.output("loud", loud)
        with durable.stage("finish"):
            time.sleep(0.2)
            done = shout(loud)
        return f"hello {done}{punctuation}"

    @app.workflow(name="fails")
    def fails(x: int) -> int:
        raise ValueError(f"no good: {x}")

    @app.workflow(name="waits")
    def waits() -> Any:
        return durable.wait_signal("go", timeout=60)

    return app


def make_changed_app(database: str | None = None) -> durable.App:
    """``greet`` as it would be after an incompatible change: another first step."""
    app = durable.App("cli", database=database, poll_interval=0.1)

    @app.step(name="whisper")
    def whisper(name: str) -> str:
        return name.lower()

    @app.workflow(name="greet")
    def greet(name: str, punctuation: str = "!") -> str:
        return whisper(name) + punctuation

    return app


app = make_app()
changed = make_changed_app()
