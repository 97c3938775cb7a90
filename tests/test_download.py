"""Downloading MNIST and Fashion-MNIST: the real download code (pooch) against a local HTTP server
on 127.0.0.1 that serves the real files, a corrupted copy, or nothing. No test reaches the internet.
"""

import functools
import hashlib
import http.server
import io
import os
import shutil
import sys
import threading
import time

import pytest

from chainrule import download
from chainrule.cli import main
from chainrule.data import load_dataset

pytest.importorskip("pooch")
pytest.importorskip("platformdirs")

FILES = list(download.DATASETS["mnist"].files)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> the base URL of a local server for ``folder``; stopped after the test."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    monkeypatch.setenv("CHAINRULE_DATA_DIR", str(folder))
    return folder


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_published_hash_is_a_sha256():
    for remote in download.DATASETS.values():
        assert len(remote.files) == 4 and len(remote.mirrors) >= 1
        for sha in remote.files.values():
            assert len(sha) == 64 and int(sha, 16) >= 0
        for url in remote.mirrors:
            assert url.startswith(("https://", "http://")) and url.endswith("/")
            assert "127.0.0.1" not in url and "localhost" not in url


def test_fetch_downloads_verifies_and_keeps_the_files(shared_data, serve, home, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(shared_data))
    old = os.umask(0o022)
    try:
        stream = io.StringIO()
        folder = download.fetch("mnist", stream=stream)
    finally:
        os.umask(old)
    assert folder == home / "mnist"
    # No temporary file left; beside the data, the memo of the verified files' sizes and times.
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, download.VERIFIED_MEMO])
    for name, sha in download.DATASETS["mnist"].files.items():
        assert _sha256(folder / name) == sha
        assert (folder / name).stat().st_mode & 0o777 == 0o644  # the umask, not 0600
    text = stream.getvalue()
    assert "Downloading http://127.0.0.1:" in text and "100%" in text and "9.9/9.9 MB" in text
    ds = load_dataset("mnist", download=False)
    assert ds.X.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    # A second call finds the verified files and downloads nothing.
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", "http://127.0.0.1:9/")
    assert download.fetch("mnist", progress=False) == folder


def test_corrupted_file_is_refused_and_not_kept(shared_data, serve, home, monkeypatch, tmp_path):
    bad = tmp_path / "mirror" / "mnist"
    bad.mkdir(parents=True)
    for name in FILES:
        shutil.copy(shared_data / "mnist" / name, bad / name)
    raw = bytearray((bad / "train-labels-idx1-ubyte.gz").read_bytes())
    raw[100] ^= 0xFF  # one flipped byte
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(bytes(raw))
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(tmp_path / "mirror"))
    with pytest.raises(download.DownloadError) as err:
        download.fetch("mnist", progress=False)
    message = str(err.value)
    assert "train-labels-idx1-ubyte.gz has SHA-256" in message and "not kept" in message
    assert download.DATASETS["mnist"].files["train-labels-idx1-ubyte.gz"] in message
    assert "\n" not in message
    kept = sorted(p.name for p in (home / "mnist").iterdir() if p.name != download.VERIFIED_MEMO)
    assert kept == ["train-images-idx3-ubyte.gz"]  # the good file before it, nothing else
    assert download.cached_folder("mnist") is None


def test_offline_gives_one_line_with_the_urls_and_the_folder(home, monkeypatch):
    monkeypatch.delenv("CHAINRULE_DATA_MIRROR")
    # Every public mirror replaced by a closed local port, so nothing leaves the machine.
    closed = download.Remote(mirrors=("http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"),
                             files=download.DATASETS["mnist"].files, reference="")
    monkeypatch.setitem(download.DATASETS, "mnist", closed)
    with pytest.raises(download.DownloadError) as err:
        download.fetch("mnist", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "http://127.0.0.1:9/a/train-images-idx3-ubyte.gz: no connection" in message
    assert "from http://127.0.0.1:9/a/ or http://127.0.0.1:9/b/ by hand" in message
    assert f"put them in {home / 'mnist'}" in message
    # No empty folder is left to be taken for the data by a later lookup.
    assert not (home / "mnist").exists()


def test_missing_file_on_the_server_is_reported(serve, home, monkeypatch, tmp_path):
    (tmp_path / "empty" / "fashion-mnist").mkdir(parents=True)
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(tmp_path / "empty"))
    with pytest.raises(download.DownloadError, match=r"fashion-mnist/train-images-idx3-ubyte"
                                                     r"\.gz: HTTP 404"):
        download.fetch("fashion-mnist", progress=False)


def test_cli_data_download_and_path(shared_data, serve, home, monkeypatch, capsys):
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(shared_data))
    assert main(["data", "download", "fashion-mnist", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out == f"fashion-mnist: 4 files verified in {home / 'fashion-mnist'}\n" and err == ""
    assert main(["data", "path", "mnist"]) == 0
    assert capsys.readouterr().out == f"{home / 'mnist'}\n"


def test_cli_data_download_offline_exits_1_with_one_line(home, capsys):
    assert main(["data", "download", "mnist", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chainrule data: error: Cannot download mnist" in err


def test_cli_data_unknown_name_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "download", "cifar"])
    assert exc.value.code == 2


def test_train_downloads_on_first_use(shared_data, serve, home, monkeypatch, capsys):
    # The default network on MNIST, from the local server; two epochs to keep the suite short
    # (the default 30 epochs reach about 98%: see the README).
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(shared_data))
    code = main(["train", "--data", "mnist", "--epochs", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Downloading http://127.0.0.1:" in err
    accuracy = float(out.rsplit("Test accuracy: ", 1)[1].rstrip("%\n"))
    assert accuracy >= 96.0
    assert download.cached_folder("mnist") == home / "mnist"


def test_a_quiet_load_downloads_without_progress_lines(shared_data, serve, home, monkeypatch,
                                                       capsys):
    from chainrule.data import load_dataset

    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(shared_data))
    ds = load_dataset("fashion-mnist", progress=False)
    assert ds.X.shape == (60_000, 784)
    assert "Downloading" not in capsys.readouterr().err
    assert download.cached_folder("fashion-mnist") == home / "fashion-mnist"


def test_missing_pooch_names_the_extra(home, monkeypatch):
    monkeypatch.setitem(sys.modules, "pooch", None)
    with pytest.raises(ImportError) as err:
        download.fetch("mnist")
    message = str(err.value)
    assert 'pip install ".[data]"' in message and "chainrule[data]" in message
    assert "\n" not in message


def test_plain_progress_bar_on_a_pipe():
    stream = io.StringIO()
    bar = download._Bar("mnist/x.gz", stream)
    bar.total = 2_000_000
    for _ in range(4):
        bar.update(500_000)
    bar.reset()
    bar.update(2_000_000)
    bar.close()
    # Not a terminal: one line at the end, no carriage returns.
    assert stream.getvalue() == f"mnist/x.gz [{'#' * 30}] 100% 2.0/2.0 MB\n"



class _HostileHandler(http.server.BaseHTTPRequestHandler):
    """A mirror that misbehaves: ``/endless/...`` streams without end, ``/stall/...`` sends 1 KB
    and then nothing, ``/trickle/...`` sends a byte every 50 ms. Each stops once the client is
    gone or after 10 s, so no thread outlives the test by long."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode = self.path.strip("/").split("/")[0]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        t0 = time.monotonic()
        try:
            if mode == "stall":
                self.wfile.write(b"\x1f" * 1024)
                self.wfile.flush()
                time.sleep(3)
                return
            while time.monotonic() - t0 < 10:
                self.wfile.write(b"\0" * (1 << 16) if mode == "endless" else b"\0")
                self.wfile.flush()
                if mode == "trickle":
                    time.sleep(0.05)
        except OSError:
            return


@pytest.fixture
def hostile():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield lambda mode: f"http://127.0.0.1:{server.server_address[1]}/{mode}"
    server.shutdown()
    server.server_close()


def _only_labels(monkeypatch, name="mnist"):
    """The data set reduced to its smallest file, so that a hostile mirror is met once."""
    remote = download.DATASETS[name]
    file = "t10k-labels-idx1-ubyte.gz"
    small = download.Remote(mirrors=remote.mirrors, files={file: remote.files[file]},
                            reference="", sizes={file: remote.sizes[file]})
    monkeypatch.setitem(download.DATASETS, name, small)
    return file


def test_a_mirror_that_streams_without_end_is_stopped_at_the_published_size(
        hostile, home, monkeypatch):
    file = _only_labels(monkeypatch)
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", hostile("endless"))
    with pytest.raises(download.DownloadError) as err:
        download.fetch("mnist", progress=False)
    message = str(err.value)
    assert f"{file}: sent more than the published 4,542 bytes" in message
    assert "removed the partial file" in message and "\n" not in message
    # Nothing is left: neither a partial file nor a temporary one.
    assert not (home / "mnist").exists() or not any((home / "mnist").iterdir())


def test_a_mirror_that_stalls_is_reported_as_stalled_not_offline(hostile, home, monkeypatch):
    file = _only_labels(monkeypatch)
    monkeypatch.setattr(download, "READ_TIMEOUT", 0.5)
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", hostile("stall"))
    with pytest.raises(download.DownloadError) as err:
        download.fetch("mnist", progress=False)
    message = str(err.value)
    assert f"{file}: stalled after 1,024 of 4,542 bytes" in message
    assert "no connection" not in message
    assert not (home / "mnist" / file).exists()


def test_a_download_slower_than_its_time_limit_is_given_up(hostile, home, monkeypatch):
    file = _only_labels(monkeypatch)
    monkeypatch.setattr(download, "TOTAL_GRACE", 0.3)
    monkeypatch.setattr(download, "MIN_RATE", 10**9)
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", hostile("trickle"))
    t0 = time.monotonic()
    with pytest.raises(download.DownloadError, match=rf"{file}: took longer than 0 s"):
        download.fetch("mnist", progress=False)
    assert time.monotonic() - t0 < 5
    assert not (home / "mnist" / file).exists()


def test_other_files_in_the_data_folder_are_named_not_trained_on(shared_data, home):
    # Fashion-MNIST's files where MNIST's belong: refused by their published SHA-256.
    shutil.copytree(shared_data / "fashion-mnist", home / "mnist")
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", download=False)
    message = str(err.value)
    assert "does not hold the published mnist files" in message
    assert "(it is fashion-mnist's train-images-idx3-ubyte.gz)" in message
    assert "chainrule data download mnist" in message


def test_altered_files_are_downloaded_again(shared_data, serve, home, monkeypatch, capsys):
    shutil.copytree(shared_data / "fashion-mnist", home / "mnist")
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(shared_data))
    ds = load_dataset("mnist", progress=False)
    assert ds.X.shape == (60000, 784)
    for name, sha in download.DATASETS["mnist"].files.items():
        assert _sha256(home / "mnist" / name) == sha


def test_a_download_cut_short_is_completed_on_the_next_load(shared_data, serve, home,
                                                            monkeypatch):
    # Three of the four files, as a failed download leaves them: the fourth is fetched.
    (home / "mnist").mkdir(parents=True)
    for name in FILES[:3]:
        shutil.copy(shared_data / "mnist" / name, home / "mnist" / name)
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", serve(shared_data))
    ds = load_dataset("mnist", progress=False)
    assert ds.X_test.shape == (10000, 784) and ds.y_test.shape == (10000,)
    assert (home / "mnist" / FILES[3]).is_file()


def test_each_file_is_hashed_once_then_known_by_size_and_time(shared_data, home, monkeypatch):
    shutil.copytree(shared_data / "mnist", home / "mnist")
    (home / "mnist").chmod(0o755)  # the copy of a read-only folder is read-only too
    assert download.check_folder("mnist", home / "mnist") == {}
    monkeypatch.setattr(download, "_sha256_of", lambda path: pytest.fail(f"hashed {path}"))
    assert download.check_folder("mnist", home / "mnist") == {}
    # A file changed since (new size and time) is hashed again.
    monkeypatch.undo()
    labels = home / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes() + b"\0")
    assert list(download.check_folder("mnist", home / "mnist")) == ["t10k-labels-idx1-ubyte.gz"]


def test_a_memo_copied_with_other_files_vouches_for_nothing(shared_data, home):
    # Fashion-MNIST verified in its own folder, then the folder copied (memo and modification
    # times included) to where MNIST belongs: the memo names the hashes it checked, not MNIST's.
    shutil.copytree(shared_data / "fashion-mnist", home / "fashion-mnist")
    (home / "fashion-mnist").chmod(0o755)  # the copy of a read-only folder is read-only too
    assert download.check_folder("fashion-mnist", home / "fashion-mnist") == {}
    assert (home / "fashion-mnist" / download.VERIFIED_MEMO).is_file()
    shutil.copytree(home / "fashion-mnist", home / "mnist")
    with pytest.raises(ValueError, match="does not hold the published mnist files"):
        load_dataset("mnist", download=False)


def test_a_read_only_data_folder_gets_no_memo(shared_data, home):
    folder = home / "mnist"
    shutil.copytree(shared_data / "mnist", folder)
    (folder / download.VERIFIED_MEMO).unlink(missing_ok=True)
    folder.chmod(0o555)
    try:
        assert download.check_folder("mnist", folder) == {}
        assert not (folder / download.VERIFIED_MEMO).exists()  # even for root
    finally:
        folder.chmod(0o755)
