"""Benchmarks for ``durable``: ``python -m benchmarks --help``.

The suite is a small registry of workloads (``registry.py``), each measured on one or more
*systems* (``raw``: the store alone, ``durable``, later ``dbos``) and *backends* (``sqlite``,
later ``postgres``). Every repetition of every cell yields one :class:`Measurement`; the
repetitions of a cell make one :class:`Result`, the common record that the table and the JSON
file are written from. See ``benchmarks/README.md``.
"""

from __future__ import annotations

from benchmarks.model import Measurement, Result, Settings, Summary

__all__ = ["Measurement", "Result", "Settings", "Summary"]
