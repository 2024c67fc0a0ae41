"""A module that does not import, for the tests of ``--app MODULE:APP``."""

from __future__ import annotations

raise RuntimeError("this module is broken on purpose")
