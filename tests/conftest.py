"""Shared test settings: Hypothesis is derandomized in CI so a red run can be reproduced.

No test reaches the internet or the user's cache folder: downloads point at a closed port on
127.0.0.1 (tests that download serve the files themselves) and land in a fresh folder.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# No answer is kept between runs of the command line (tests of the cache give it a folder).
os.environ["CHAINRULE_CACHE_DIR"] = ""



def _real_data_folder() -> Path:
    """Where the real MNIST and Fashion-MNIST IDX files are, looked up as chainrule does
    (CHAINRULE_DATA_DIR as the tests started, then the download cache), then beside the
    project."""
    from chainrule.download import _platform_cache

    beside = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    start = os.environ.get("CHAINRULE_DATA_DIR")
    for place in (Path(start) if start else None, _platform_cache(), beside):
        if place is not None and _holds_idx_files(place):
            return place
    return beside


def _holds_idx_files(place: Path) -> bool:
    """True when ``place/mnist`` holds the four IDX files (an empty folder left by an
    interrupted download does not count)."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return all((place / "mnist" / name).is_file() for name in names)


SHARED_DATA = _real_data_folder()
os.environ["CHAINRULE_DATA_MIRROR"] = "http://127.0.0.1:9/"
os.environ["CHAINRULE_DATA_DIR"] = tempfile.mkdtemp(prefix="chainrule-test-data-")
atexit.register(shutil.rmtree, os.environ["CHAINRULE_DATA_DIR"], ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def shared_data():
    """The folder holding mnist/ and fashion-mnist/ (the IDX files); tests using it skip when
    the files are absent."""
    if not _holds_idx_files(SHARED_DATA):
        pytest.skip("the MNIST and Fashion-MNIST IDX files are absent (set CHAINRULE_DATA_DIR "
                    "to the folder holding mnist/ and fashion-mnist/)")
    return SHARED_DATA


def docs_build_command(out: Path) -> list[str]:
    """The documentation build of tests/test_docs_build.py: the documented command, into
    ``out``, with the tutorials' code left to tests/test_tutorials.py."""
    import sys

    docs = Path(__file__).resolve().parents[1] / "docs"
    return [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
            "-D", "nb_execution_mode=off", "-d", str(out / "doctrees"), str(docs),
            str(out / "html")]


def pytest_collection_finish(session):
    """Start the documentation build when its test is collected, so that it runs on the second
    core while the single-threaded tests before it run; tests/test_docs_build.py waits for it."""
    import importlib.util
    import subprocess

    if not any(item.path.name == "test_docs_build.py" for item in session.items):
        return
    if any(importlib.util.find_spec(t) is None for t in ("sphinx", "myst_nb", "numpydoc", "furo")):
        return  # the test skips and says why
    out = Path(tempfile.mkdtemp(prefix="chainrule-docs-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    log = open(out / "build.log", "w", encoding="utf-8")  # the build writes it; closed by the test
    process = subprocess.Popen(docs_build_command(out), cwd=Path(__file__).resolve().parents[1],
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    session.config.chainrule_docs_build = (process, out, log)
