"""``durable ui``: serves the dashboard, binds loopback by default, prints the token when
bound beyond it, refuses a log that does not exist."""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import make_demo_log as demo_wf
import pytest
from harness.processes import Proc, Processes, run

import durable
from durable.cli.ui import is_loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _durable(processes: Processes, *args: str) -> Proc:
    """``durable ARGS`` as a child of the test (its stderr kept apart: the tests read it)."""
    return processes.start(
        [sys.executable, "-m", "durable.cli", *args], name="durable-ui", separate_stderr=True
    )


def _wait_serving(url: str, proc: Proc) -> None:
    def serving() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    proc.wait_for(serving, 30, f"a page at {url}")


def _stderr_lines(proc: Proc, n: int) -> list[str]:
    """The first ``n`` lines ``proc`` printed on stderr (waiting for them)."""
    text = proc.wait_for(
        lambda: proc.errors() if proc.errors().count("\n") >= n else "", 30, f"{n} lines"
    )
    return [line.strip() for line in text.splitlines()[:n]]


def test_serves_on_loopback_with_the_token_in_the_page(
    demo: durable.App, processes: Processes
) -> None:
    h = demo.client().start(demo_wf.reminder, "cli", 3600.0)
    port = _free_port()
    proc = _durable(processes, "--database", demo.database, "ui", "--port", str(port))
    assert _stderr_lines(proc, 1) == [f"durable ui: http://127.0.0.1:{port}/runs"]
    _wait_serving(f"http://127.0.0.1:{port}/runs", proc)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{h.id}") as r:
        page = r.read().decode()
    marker = '<meta name="durable-token" content="'
    token = page.split(marker, 1)[1].split('"', 1)[0]
    assert len(token) >= 32
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/runs/{h.id}/cancel",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["status"] == "cancelled"


def test_beyond_loopback_prints_the_token_and_keeps_it_out_of_pages(
    demo: durable.App, processes: Processes
) -> None:
    h = demo.client().start(demo_wf.reminder, "cli", 3600.0)
    port = _free_port()
    proc = _durable(
        processes, "--database", demo.database, "ui", "--host", "0.0.0.0", "--port", str(port)
    )
    first, second = _stderr_lines(proc, 2)
    assert first == f"durable ui: http://0.0.0.0:{port}/runs"
    assert second.startswith("durable ui: action token: ")
    token = second.rsplit(" ", 1)[1]
    _wait_serving(f"http://127.0.0.1:{port}/runs", proc)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{h.id}") as r:
        assert token not in r.read().decode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/runs/{h.id}/cancel", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 401
    err.value.close()
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["status"] == "cancelled"


def test_refuses_a_log_that_does_not_exist(tmp_path: Path, processes: Processes) -> None:
    proc = _durable(processes, "--database", f"sqlite:///{tmp_path}/missing.db", "ui")
    assert proc.wait(60) == 6, proc.describe()
    err = proc.errors()
    assert err.startswith("durable: ") and "Traceback" not in err
    assert not (tmp_path / "missing.db").exists()


def test_help_and_bad_options() -> None:
    out = run([sys.executable, "-m", "durable.cli", "ui", "--help"])
    assert out.returncode == 0 and "--read-only" in out.stdout and "--token" in out.stdout
    bad = run([sys.executable, "-m", "durable.cli", "ui", "--port", "http"])
    assert bad.returncode == 2 and "not a port number" in bad.stderr
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
