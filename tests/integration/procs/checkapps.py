"""What ``durable check --app`` refuses, for its tests: ``empty`` is an App that registers no
workflow, ``number`` is not an App (``brokenapp.py`` is a module that does not import)."""

from __future__ import annotations

import durable

empty = durable.App("empty")
number = 42
