"""``durable ui``: serves the dashboard, binds loopback by default, prints the token when
bound beyond it, refuses a log that does not exist."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import make_demo_log as demo_wf
import pytest

import durable
from durable.cli.ui import is_loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _durable(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "durable.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_serving(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing served at {url}")


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _stderr_lines(proc: subprocess.Popen[str], n: int) -> list[str]:
    assert proc.stderr is not None
    return [proc.stderr.readline().strip() for _ in range(n)]


def test_serves_on_loopback_with_the_token_in_the_page(
    demo: durable.App, stop: list[subprocess.Popen[str]]
) -> None:
    h = demo.client().start(demo_wf.reminder, "cli", 3600.0)
    port = _free_port()
    proc = _durable("--database", demo.database, "ui", "--port", str(port))
    stop.append(proc)
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
    demo: durable.App, stop: list[subprocess.Popen[str]]
) -> None:
    h = demo.client().start(demo_wf.reminder, "cli", 3600.0)
    port = _free_port()
    proc = _durable("--database", demo.database, "ui", "--host", "0.0.0.0", "--port", str(port))
    stop.append(proc)
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
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["status"] == "cancelled"


def test_refuses_a_log_that_does_not_exist(tmp_path: Path) -> None:
    proc = _durable("--database", f"sqlite:///{tmp_path}/missing.db", "ui")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 6, err
    assert err.startswith("durable: ") and "Traceback" not in err
    assert not (tmp_path / "missing.db").exists()


def test_help_and_bad_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "durable.cli", "ui", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--read-only" in out.stdout and "--token" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "durable.cli", "ui", "--port", "http"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a port number" in bad.stderr
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
