"""Test plumbing shared by every folder of the suite (importable as ``harness``).

- :mod:`harness.processes`: child processes of a test, started, watched, signalled and always
  reaped (the ``processes`` fixture of ``tests/conftest.py``), and one-shot commands.
- :mod:`harness.faults`: a wrapper around a real store that injects a failure, a delay, a
  pause or any callback before, around or after one of its public methods.
"""
