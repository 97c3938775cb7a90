"""The answer cache: a repeated ``chainrule derive`` or ``check`` answers from a JSON file,
exactly as a fresh run would, without loading SymPy; a damaged entry is ignored and rewritten."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chainrule import _cache, _panels
from chainrule.cli import main

QUERIES = [
    ["derive", "sigmoid"],
    ["derive", "x*sigmoid(x)", "--format", "latex"],
    ["derive", "--activation", "tanh", "--loss", "bce", "--format", "json"],
    ["derive", "--network", "relu,sigmoid", "--loss", "bce", "--format", "markdown"],
    ["check", "yhat - y", "--loss", "mse", "--half"],
    ["check", "-(y/yhat + (1-y)/(1-yhat))", "--loss", "bce", "--format", "json"],
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, str(tmp_path))
    return tmp_path


def _run(argv, capsys) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _no_engine(*args, **kwargs):
    raise AssertionError("the engine ran: the answer did not come from the cache")


@pytest.mark.parametrize("argv", QUERIES, ids=lambda a: " ".join(a[:2]))
def test_a_repeated_query_answers_from_the_cache_as_a_fresh_run_does(argv, folder, capsys,
                                                                     monkeypatch):
    fresh = _run(argv, capsys)
    assert len(list(folder.rglob("*.json"))) == 1
    monkeypatch.setattr(_panels, "derive", _no_engine)
    monkeypatch.setattr(_panels, "check", _no_engine)
    assert _run(argv, capsys) == fresh  # the same text and the same exit code


def test_the_cached_answer_is_the_fresh_derivation(folder, capsys):
    from chainrule.derivation import derive

    _run(["derive", "--activation", "softmax", "--format", "json"], capsys)
    code, cached = _run(["derive", "--activation", "softmax", "--format", "json"], capsys)
    assert code == 0
    assert json.loads(cached) == json.loads(derive(activation="softmax").to_json())


def test_a_wrong_check_keeps_its_exit_code(folder, capsys):
    argv = ["check", "yhat - y", "--loss", "mse"]  # the derivative is 2(yhat - y)
    assert _run(argv, capsys)[0] == 1
    code, text = _run(argv, capsys)
    assert code == 1 and text.startswith("Not correct")


@pytest.mark.parametrize("damage", ["", "not json", "[1, 2]", '{"key": 1, "answer": {}}',
                                    "\x00\xff", '{"answer": {"text": "forged"}}'])
def test_a_damaged_entry_is_ignored_and_rewritten(damage, folder, capsys):
    argv = ["derive", "tanh"]
    fresh = _run(argv, capsys)
    [entry] = folder.rglob("*.json")
    entry.write_bytes(damage.encode("utf-8", "surrogateescape"))
    assert _run(argv, capsys) == fresh
    stored = json.loads(entry.read_text(encoding="utf-8"))
    assert stored["answer"]["text"] == fresh[1]


def test_an_entry_holds_its_key_and_json_only(folder, capsys):
    _run(["derive", "relu"], capsys)
    [entry] = folder.rglob("*.json")
    stored = json.loads(entry.read_text(encoding="utf-8"))
    assert stored["key"]["kind"] == "derive"
    assert stored["key"]["request"]["values"]["expression"] == "relu"
    assert stored["key"]["request"]["format"] == "text"


def test_an_empty_cache_folder_setting_turns_the_cache_off(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, "")
    assert _cache.cache_folder() is None
    _run(["derive", "sigmoid"], capsys)
    assert _cache.load("derive", {"values": {}, "format": "text"}) is None
    assert not list(tmp_path.rglob("*.json"))


def test_an_unwritable_cache_folder_only_costs_time(tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, str(blocked / "answers"))
    assert _run(["derive", "sigmoid"], capsys)[0] == 0


def test_a_cache_hit_loads_neither_sympy_nor_numpy(folder):
    program = ("import sys\nfrom chainrule.cli import main\ncode = main(['derive', 'sigmoid'])\n"
               "print(code, 'sympy' in sys.modules, 'numpy' in sys.modules)")
    env = {**__import__("os").environ, _cache.CACHE_DIR_ENV: str(folder)}
    runs = [subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                           env=env, timeout=300) for _ in range(2)]
    assert runs[0].stdout.splitlines()[-1] == "0 True True"  # the first run derives
    assert runs[1].stdout.splitlines()[-1] == "0 False False"  # the second reads its answer
    assert runs[0].stdout.splitlines()[:-1] == runs[1].stdout.splitlines()[:-1]
