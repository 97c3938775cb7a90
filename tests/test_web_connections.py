"""`chainrule serve` under hostile connections, over 127.0.0.1: clients that connect and send
nothing, or send a request's head a byte at a time, are closed after the header timeout, and a
flood of them past the open-file limit leaves the server reachable, with one line about it on
stderr instead of a traceback per failed ``accept``. Speed is not asserted: only that an
ordinary request is answered, and that the idle connections are closed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from web_server import ROOT, STARTUP_SECONDS, needs_proc

FLOOD = 1200
DESCRIPTORS = 1024


@contextlib.contextmanager
def _server(*args, descriptors: int | None = None):
    """``chainrule serve --port 0 *args`` with at most ``descriptors`` open files; yields
    (url, process); stderr is read after it stops."""
    def limit():
        if descriptors is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    command = [sys.executable, "-m", "chainrule.cli", "serve", "--port", "0", "--workers", "1",
               *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=ROOT,
                            preexec_fn=limit)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", proc.stdout.readline())
            url = match.group(1) if match else None
        assert url, f"the server did not start: {proc.stderr.read()[-2000:]}"
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _api(url: str) -> dict:
    with urllib.request.urlopen(url + "api", timeout=120) as answer:
        return json.load(answer)


def _closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_silent_and_slow_clients_are_closed_after_the_header_timeout():
    with _server("--header-timeout", "1") as (url, proc):
        port = _port(url)
        silent = socket.create_connection(("127.0.0.1", port))
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /api HTTP/1.1\r\n")  # the head never ends
        complete = socket.create_connection(("127.0.0.1", port))
        complete.sendall(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        complete.settimeout(60)
        assert complete.recv(12) == b"HTTP/1.1 200"
        # bounded: each is closed within the timeout plus a margin, or the test fails
        assert _closed_by_server(silent, 30)
        assert _closed_by_server(slow, 30)
        for sock in (silent, slow, complete):
            sock.close()
    err = proc.stderr.read()
    assert "Traceback" not in err
    assert "sent no complete request within 1 s (--header-timeout)" in err


@needs_proc
def test_a_flood_of_half_open_connections_past_the_file_limit_leaves_the_server_reachable():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(f"this test needs {FLOOD + 200} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FLOOD + 200), hard))
    flood = []
    try:
        with _server("--header-timeout", "5", descriptors=DESCRIPTORS) as (url, proc):
            port = _port(url)
            for _ in range(FLOOD):  # connect and send nothing
                with contextlib.suppress(OSError):
                    flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            assert "derive" in _api(url)  # answered while the flood holds its connections
            assert "check" in _api(url)
    finally:
        for sock in flood:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    err = proc.stderr.read()
    assert "Traceback" not in err and "Too many open files" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("connections are open, the limit (--max-connections)" in ln for ln in lines)
    assert len(lines) <= 5, err[-3000:]  # a line per limit reached, not one per connection


@pytest.mark.parametrize(("argv", "words"), [
    (["--max-connections", "10000000"], "is more than the open-file limit leaves room for"),
    (["--max-connections", "0"], "--max-connections must be at least 1; got 0"),
    (["--header-timeout", "0"], "--header-timeout must be a positive number of seconds"),
    (["--header-timeout", "nan"], "--header-timeout must be a positive number of seconds"),
])
def test_bad_connection_limits_are_one_line_usage_errors(argv, words, capsys):
    from chainrule.cli import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule serve: error: ") and words in err
    assert len(err.strip().splitlines()) == 1
