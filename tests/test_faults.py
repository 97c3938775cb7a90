"""Faults during a run: Ctrl-C, a full disk, divergence. Nothing is lost, nothing non-finite saved.

- Ctrl-C (SIGINT sent to a real ``chainrule train`` process, once and twice): exit 130, the file
  named by ``--out`` byte for byte as it was, the partial model (if any) beside it.
- A full disk for every writer (model, image, predictions; through the API and the CLI): the
  existing file byte for byte as it was, no temporary file left, one clear line.
- Divergence at the first, a middle and the last update: the weights are restored, and nothing
  non-finite is ever written.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule import optim
from chainrule.cli import main
from chainrule.nn import mlp
from chainrule.serialization import write_safetensors
from chainrule.training import TrainingDivergedError

ORIGINAL = b"an existing model that must survive\n"


def _csv(path: Path, rows: int = 300) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = [",".join(f"{v:.5f}" for v in x) + f",{t}" for x, t in zip(X, y, strict=True)]
    lines = ["a,b,c,d,label", *rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- Ctrl-C ------------------------------------------------------------------------------------


def _start_training(folder: Path) -> subprocess.Popen:
    _csv(folder / "data.csv")
    (folder / "model.safetensors").write_bytes(ORIGINAL)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chainrule.cli", "train", "--data", "data.csv", "--layers", "16",
         "--epochs", "1000000", "--batch-size", "1", "--out", "model.safetensors"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    # Wait until training runs: the first epoch's progress line on stderr.
    deadline = time.monotonic() + 120
    line = b""
    while b"Epoch 1/" not in line:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"chainrule train ended early: {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("chainrule train did not start training within 120 s")
    return proc


@pytest.mark.parametrize(("presses", "gap"), [(1, 0.0), (2, 0.02), (2, 0.3)],
                         ids=["once", "twice-quickly", "twice-slowly"])
def test_ctrl_c_exits_130_and_never_touches_the_existing_model(tmp_path, presses, gap):
    proc = _start_training(tmp_path)
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("chainrule train kept running after Ctrl-C")
    err = err.decode()
    assert proc.returncode == 130, err
    assert (tmp_path / "model.safetensors").read_bytes() == ORIGINAL
    assert "Traceback" not in err
    assert not [n for n in _listing(tmp_path) if n.endswith(".tmp")]
    partial = [n for n in _listing(tmp_path) if n.startswith("model.interrupted")]
    if presses == 1:
        # The first Ctrl-C finishes the batch and keeps the weights so far, beside --out.
        assert partial == ["model.interrupted.safetensors"]
        assert "model.safetensors was not touched" in err
        assert "model.interrupted.safetensors" in err.splitlines()[-1]
        model = chainrule.load(tmp_path / "model.interrupted.safetensors")
        assert all(np.isfinite(p).all() for p in model.parameters())
    for name in partial:  # a second Ctrl-C may land before or after the partial save
        chainrule.load(tmp_path / name)


def test_a_second_interrupted_run_takes_the_next_free_name(tmp_path, capsys):
    from chainrule._cli._faults import finish_interrupted
    from chainrule.training import History

    (tmp_path / "m.safetensors").write_bytes(ORIGINAL)
    (tmp_path / "m.interrupted.safetensors").write_bytes(b"an earlier partial model")
    args = type("Args", (), {"out": str(tmp_path / "m.safetensors")})()
    model = mlp([2, 3, 1], seed=0)
    assert finish_interrupted(args, model, History()) == 130
    assert (tmp_path / "m.safetensors").read_bytes() == ORIGINAL
    assert (tmp_path / "m.interrupted.safetensors").read_bytes() == b"an earlier partial model"
    assert chainrule.load(tmp_path / "m.interrupted-2.safetensors").n_parameters() == 13
    assert "m.interrupted-2.safetensors" in capsys.readouterr().err


# --- a full disk -------------------------------------------------------------------------------


class _FullDisk:
    """A file object that accepts ``room`` bytes, then fails as a full disk does."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self._room:
            self._fh.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


@pytest.fixture(params=[0, 40], ids=["at-once", "after-40-bytes"])
def full_disk(request, monkeypatch):
    """Calling it makes every file written through chainrule's atomic writer run out of space."""
    import chainrule._io as cio

    real = os.fdopen

    def fdopen(fd, *args, **kwargs):
        return _FullDisk(real(fd, *args, **kwargs), request.param)

    return lambda: monkeypatch.setattr(cio.os, "fdopen", fdopen)


def _fsync_fails(monkeypatch):
    import chainrule._io as cio

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cio.os, "fsync", fsync)


def _trained(tmp_path: Path) -> Path:
    _csv(tmp_path / "data.csv", rows=60)
    assert main(["train", "--data", str(tmp_path / "data.csv"), "--layers", "4", "--epochs",
                 "1", "-q", "--out", str(tmp_path / "good.safetensors")]) == 0
    return tmp_path / "good.safetensors"


WRITERS = {
    "Sequential.save": lambda p, d: mlp([3, 4, 2], seed=0).save(p),
    "write_safetensors": lambda p, d: write_safetensors(
        p, {"w": np.ones((64, 64), np.float32)}),
    "train --out": lambda p, d: main(["train", "--data", str(d / "data.csv"), "--layers", "4",
                                      "--epochs", "1", "-q", "--out", str(p)]),
    "train --plot": lambda p, d: main(["train", "--data", str(d / "data.csv"), "--layers", "4",
                                       "--epochs", "2", "-q", "--plot", str(p)]),
    "predict --out": lambda p, d: main(["predict", str(d / "good.safetensors"), "--data",
                                        str(d / "data.csv"), "--target", "label",
                                        "--out", str(p)]),
    "plot --out": lambda p, d: main(["plot", "sigmoid", "--out", str(p)]),
}
SUFFIX = {"train --plot": ".png", "plot --out": ".png", "predict --out": ".csv"}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_full_disk_keeps_the_existing_file_and_leaves_no_temp(tmp_path, writer, full_disk,
                                                                capsys):
    _trained(tmp_path)
    target = tmp_path / f"out{SUFFIX.get(writer, '.safetensors')}"
    target.write_bytes(ORIGINAL)
    before = _listing(tmp_path)
    capsys.readouterr()
    full_disk()
    try:
        rc = WRITERS[writer](target, tmp_path)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
        assert "the disk is full" in str(exc)
    else:
        err = capsys.readouterr().err
        assert rc == 1, err
        assert len(err.strip().splitlines()) == 1, err
        assert f"{target}: the disk is full" in err and "Errno" not in err
    assert target.read_bytes() == ORIGINAL
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("writer", ["Sequential.save", "predict --out", "plot --out"])
def test_a_failing_fsync_keeps_the_existing_file(tmp_path, writer, monkeypatch, capsys):
    _trained(tmp_path)
    target = tmp_path / f"out{SUFFIX.get(writer, '.safetensors')}"
    target.write_bytes(ORIGINAL)
    before = _listing(tmp_path)
    _fsync_fails(monkeypatch)
    try:
        rc = WRITERS[writer](target, tmp_path)
    except OSError:
        rc = 1
    assert rc == 1
    assert target.read_bytes() == ORIGINAL
    assert _listing(tmp_path) == before


def test_writes_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = mlp([2, 2], seed=0).save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_never_replaces_a_device_or_a_folder(tmp_path):
    from chainrule._io import atomic_write

    for target in ("/dev/null", tmp_path):
        with pytest.raises(ValueError, match="not a regular file"):
            atomic_write(target, lambda fh: fh.write(b"x"))
    assert Path("/dev/null").is_char_device()
    with pytest.raises(FileExistsError):
        (tmp_path / "f").write_bytes(b"old")
        atomic_write(tmp_path / "f", lambda fh: fh.write(b"new"), replace=False)
    assert (tmp_path / "f").read_bytes() == b"old"
    assert _listing(tmp_path) == ["f"]


# --- divergence --------------------------------------------------------------------------------


class _BlowsUpAt(optim.SGD):
    """SGD whose update number ``at`` turns the first weight into inf (or a huge number)."""

    def __init__(self, at: int, value: float = np.inf):
        super().__init__(lr=0.01)
        self.at, self.value, self.count = at, value, 0

    def step(self, params, grads):
        super().step(params, grads)
        self.count += 1
        if self.count == self.at:
            params[0].flat[0] = self.value


def _data(n=40):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([1.0, -2.0, 0.5])


@pytest.mark.parametrize("at", [1, 10, 20], ids=["first", "middle", "last"])
def test_divergence_at_any_update_restores_finite_weights(tmp_path, at):
    X, y = _data()
    model = mlp([3, 4, 1], seed=0)
    # 2 epochs of 10 batches of 4: 20 updates; the 20th is the last one, after the last loss.
    with pytest.raises(TrainingDivergedError, match="diverged") as info:
        model.fit(X, y, optimizer=_BlowsUpAt(at), epochs=2, batch_size=4, verbose=0, seed=0)
    assert all(np.isfinite(p).all() for p in model.parameters())
    assert info.value.history.epochs_run == (at - 1) // 10
    model.save(tmp_path / "m.safetensors")
    restored = chainrule.load(tmp_path / "m.safetensors")
    assert all(np.isfinite(p).all() for p in restored.parameters())


def test_a_model_with_non_finite_weights_is_never_saved(tmp_path):
    model = mlp([3, 4, 1], seed=0)
    model.parameters()[0][0, 0] = np.nan
    (tmp_path / "m.safetensors").write_bytes(ORIGINAL)
    with pytest.raises(ValueError, match="Not saved: the weight of layer 0 holds NaN or inf"):
        model.save(tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes() == ORIGINAL
    assert _listing(tmp_path) == ["m.safetensors"]


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["text", "json"])
def test_train_that_diverges_in_its_last_step_saves_nothing(tmp_path, capsys, extra):
    _csv(tmp_path / "data.csv", rows=100)
    rc = main(["train", "--data", str(tmp_path / "data.csv"), "--lr", "1e30", "--epochs", "1",
               "--batch-size", "1000", "-q", "--out", str(tmp_path / "m.safetensors"), *extra])
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""  # never a partial JSON document
    assert "diverged" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()


def test_huge_targets_are_named_instead_of_the_learning_rate():
    X, _ = _data()
    y = np.full(len(X), 1e20)
    with pytest.raises(TrainingDivergedError, match=r"targets reach 1e\+20.*scale them"):
        mlp([3, 4, 1], seed=0).fit(X, y, epochs=2, verbose=0, seed=0)


def test_callbacks_are_checked_before_training():
    X, y = _data()
    model = mlp([3, 4, 1], seed=0)
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"callbacks must be callables .* got 5 \(int\)"):
        model.fit(X, y, callbacks=[5], epochs=1, verbose=0)
    assert all((a == b).all() for a, b in zip(before, model.parameters(), strict=True))
