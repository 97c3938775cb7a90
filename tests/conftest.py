"""Shared test settings: Hypothesis is derandomized in CI so a red run can be reproduced.

No test reaches the internet or the user's cache folder: downloads point at a closed port on
127.0.0.1 (tests that download serve the files themselves) and land in a fresh folder.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Where the real MNIST and Fashion-MNIST IDX files are, if anywhere: a copy beside the project,
# or the folder CHAINRULE_DATA_DIR named when the tests started.
_DATA_DIR_AT_START = os.environ.get("CHAINRULE_DATA_DIR")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _DATA_DIR_AT_START and (Path(_DATA_DIR_AT_START) / "mnist").is_dir():
    SHARED_DATA = Path(_DATA_DIR_AT_START)
os.environ["CHAINRULE_DATA_MIRROR"] = "http://127.0.0.1:9/"
os.environ["CHAINRULE_DATA_DIR"] = tempfile.mkdtemp(prefix="chainrule-test-data-")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def shared_data():
    """The folder holding mnist/ and fashion-mnist/ (the IDX files); tests using it skip when
    the files are absent."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("the MNIST and Fashion-MNIST IDX files are absent (set CHAINRULE_DATA_DIR "
                    "to the folder holding mnist/ and fashion-mnist/)")
    return SHARED_DATA
