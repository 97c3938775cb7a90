"""`chainrule serve`: prints its URL, serves, and stops cleanly on Ctrl-C with its workers."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from chainrule.cli import main
from web_server import (
    alive,
    children,
    command_line,
    needs_proc,
    serving,
    still_alive,
    stop,
)


@needs_proc
def test_serve_prints_the_url_answers_and_stops_on_ctrl_c_with_its_workers():
    with serving("--workers", "2", "--timeout", "20") as (url, proc):
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/derive?expression=sigmoid", timeout=120) as r:
            assert json.load(r)["result_output_form"] == "yhat*(1 - yhat)"
        everyone = children(proc.pid)
        workers = [pid for pid in everyone if "spawn_main" in command_line(pid)]
        assert len(workers) == 3  # --workers 2, and the one kept for quick requests
        assert stop(proc) == 0
        assert proc.stderr.read().strip().endswith("chainrule serve: stopped")
    # The server kills and reaps its workers before it exits; multiprocessing's helper
    # process (the resource tracker) ends when the server's end of its pipe closes.
    assert not any(alive(pid) for pid in workers)
    assert still_alive(everyone) == []


def test_a_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"chainrule serve: error: port {port} on 127.0.0.1 is in use; choose "
                           "another with --port (--port 0 picks a free one)")


@pytest.mark.parametrize("argv, words", [
    (["--workers", "0"], "--workers must be at least 1; got 0"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds; got 0"),
    (["--port", "70000"], "--port must be in 0..65535; got 70000"),
])
def test_bad_settings_are_one_line_usage_errors(capsys, argv, words):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule serve: error: ") and words in err
    assert len(err.strip().splitlines()) == 1


def test_help_names_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "127.0.0.1" in out and "8000" in out
