"""scikit-learn's own MLP tests, run against chainrule's estimators as a user switching over would.

The test file shipped inside the installed scikit-learn (sklearn/neural_network/tests/test_mlp.py)
is copied to a temporary folder with one change, its import of MLPClassifier and MLPRegressor,
and run by pytest in a subprocess, with scikit-learn's conftest loaded as a plugin (it provides
the global_random_seed fixture). Every one of its tests must pass.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
_OURS = "from chainrule.sklearn import MLPClassifier, MLPRegressor"


def _shipped_test_file() -> Path | None:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "neural_network" / "tests" / "test_mlp.py"
    return path if path.is_file() else None


def test_scikit_learns_own_mlp_tests_pass_on_chainrule(tmp_path):
    source = _shipped_test_file()
    if source is None:
        pytest.skip("this scikit-learn installation does not ship its tests "
                    "(sklearn/neural_network/tests/test_mlp.py)")
    text = source.read_text(encoding="utf-8")
    assert text.count(_IMPORT) == 1, "scikit-learn's test file imports its MLPs differently"
    (tmp_path / "test_mlp.py").write_text(text.replace(_IMPORT, _OURS), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", None)  # scikit-learn's default seed, 42
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sklearn.conftest",
         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 50, summary
    assert not re.search(r"failed|error|skipped", summary), summary
