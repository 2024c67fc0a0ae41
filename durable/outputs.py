"""A run's outputs tree, read from its journal, and the rule that keeps its keys apart.

The tree is ``{stage: {name: value}}``, anything outside a stage under ``"main"``:

- a key written by ``durable.output`` in workflow code is ``tree[stage][key]``;
- each step call of a stage is ``tree[stage][step]``, a :class:`StepOutputs` (a ``dict``)
  holding the call's result under ``"result"`` (once it completed) and the keys its body
  wrote with ``durable.output``. The second call of that step in the same stage is
  ``tree[stage]["step#2"]``, the third ``"step#3"``, and so on, numbered in call order.
  The attempts of one call share its node: a key written again by a later try replaces the
  earlier value.

Keys never collide: in workflow code a key may not be the name of a registered step (nor
such a name with a ``#n`` suffix), in a step body the key ``"result"`` is the step's own,
and step names may not end in ``#`` and digits. Journals written before step nodes existed
(their outputs carry no step) read as they were written: every key under its stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from durable.events import EventType as T
from durable.types import LogEvent

__all__ = ["MAIN_STAGE", "RESULT_KEY", "StepOutputs", "check_output_key", "output_tree"]

MAIN_STAGE = "main"
"""Where outputs and step calls outside any stage are kept."""
RESULT_KEY = "result"
"""The key of a step call's result in its node."""

_CALL_SUFFIX = re.compile(r"#\d+$")
_STEP_EVENTS = (T.STEP_STARTED, T.STEP_COMPLETED, T.STEP_FAILED)


class StepOutputs(dict[str, Any]):
    """One step call's node of the outputs tree: a ``dict`` of its result (``"result"``,
    once the call completed) and the keys its body wrote with ``durable.output``.

    A ``dict`` in every respect (equal to a plain ``dict`` of the same items, encoded to
    JSON as one); its type tells a step call's node from a workflow-level value that
    happens to be a ``dict``.
    """


def check_step_name(name: str) -> None:
    """A step's name may not end in ``#`` and digits (the label of a repeated call)."""
    if _CALL_SUFFIX.search(name):
        raise ValueError(
            f"a step name may not end in '#' and digits ({name!r}): the outputs tree labels "
            "the second call of a step in a stage 'name#2'"
        )


def check_output_key(key: str, step: str | None, steps: Mapping[str, Any]) -> None:
    """Refuse a ``durable.output`` key that would collide in the tree.

    Raises:
        ValueError: in a step body (``step`` given), the key ``"result"``; in workflow code,
            the name of a registered step, with or without a ``#n`` suffix.
    """
    if step is not None:
        if key == RESULT_KEY:
            raise ValueError(
                f"durable.output({key!r}) in the body of step {step!r}: the key {key!r} of a "
                "step's outputs is its return value; return it, or pick another key"
            )
        return
    base = _CALL_SUFFIX.sub("", key)
    if base in steps:
        raise ValueError(
            f"durable.output({key!r}) in workflow code: {base!r} is the name of a step, whose "
            "calls the outputs tree keeps under that name; pick another key"
        )


def output_tree(events: Iterable[LogEvent]) -> dict[str, dict[str, Any]]:
    """The outputs tree of a run's journal (see the module's docstring)."""
    evs = list(events)
    calls: dict[int, tuple[str, str]] = {}
    for ev in evs:
        if ev.type in _STEP_EVENTS and ev.position is not None and ev.position not in calls:
            calls[ev.position] = (ev.data.get("stage") or MAIN_STAGE, ev.name or "")
    labels: dict[int, str] = {}
    count: dict[tuple[str, str], int] = {}
    for pos in sorted(calls):
        n = count[calls[pos]] = count.get(calls[pos], 0) + 1
        name = calls[pos][1]
        labels[pos] = name if n == 1 else f"{name}#{n}"
    tree: dict[str, dict[str, Any]] = {}

    def node(pos: int) -> StepOutputs:
        stage = tree.setdefault(calls[pos][0], {})
        found = stage.get(labels[pos])
        if not isinstance(found, StepOutputs):
            found = stage[labels[pos]] = StepOutputs()
        return found

    for ev in evs:
        if ev.type == T.STEP_COMPLETED and ev.position in calls:
            assert ev.position is not None
            node(ev.position)[RESULT_KEY] = ev.data.get("result")
        elif ev.type == T.OUTPUT:
            at = ev.data.get("step")
            if isinstance(at, int) and at in calls:
                node(at)[ev.name or ""] = ev.data.get("value")
            else:
                stage = ev.data.get("stage") or MAIN_STAGE
                tree.setdefault(stage, {})[ev.name or ""] = ev.data.get("value")
    return tree
