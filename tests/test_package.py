"""The package as a user meets it: its public names, and one line naming the extra to install
when an optional dependency is missing."""

import os
import re
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import chainrule

# A child interpreter in which the named top-level modules cannot be imported, as on a machine
# where the extra was not installed.
_BLOCK = textwrap.dedent("""
    import sys
    BLOCKED = set(sys.argv[1].split(","))
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
    sys.argv = sys.argv[1:]
""")


def _run_without(modules: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK + textwrap.dedent(code), modules],
                          capture_output=True, text=True, timeout=120)


def test_dir_lists_the_public_names_only():
    names = dir(chainrule)
    assert "annotations" not in names and "importlib" not in names
    assert {"__version__", "nn", "losses", "optim", "data", "load", "derive", "gradcheck",
            "check_model", "sklearn"} <= set(names)
    assert all(not n.startswith("_") or n == "__version__" for n in names)


@pytest.mark.parametrize("argv, package, extra", [
    (["derive", "sigmoid"], "SymPy", "derive"),
    (["check", "--loss", "bce", "--wrt", "yhat", "(yhat - y)"], "SymPy", "derive"),
])
def test_cli_names_the_extra_in_one_line(argv, package, extra):
    proc = _run_without("sympy", f"""
        from chainrule.cli import main
        sys.exit(main({argv!r}))
    """)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"needs {package}, which is not installed" in proc.stderr
    assert f'pip install ".[{extra}]" in a clone of chainrule' in proc.stderr
    assert f'"chainrule[{extra}]" once it is published' in proc.stderr


def test_python_api_names_the_extra():
    proc = _run_without("sympy", """
        import chainrule
        try:
            chainrule.derive("sigmoid")
        except ImportError as exc:
            print(exc)
    """)
    out = proc.stdout.strip()
    assert out.startswith("chainrule.derive needs SymPy") and '".[derive]"' in out, proc.stderr


def test_import_chainrule_sklearn_without_scipy_names_the_extra():
    proc = _run_without("scipy", "import chainrule.sklearn")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: chainrule.sklearn needs SciPy, which is not installed")
    assert '".[sklearn]"' in last
    assert "No module named" not in proc.stderr


def test_python_m_chainrule_is_the_command():
    proc = subprocess.run([sys.executable, "-m", "chainrule", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"chainrule {chainrule.__version__}"


# --- the project's metadata and its CI script -----------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_console_script_numpy_only_and_mit_license():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["chainrule"] == "chainrule.cli:main"
    assert [re.split(r"[<>=~ ]", d)[0] for d in project["dependencies"]] == ["numpy"]
    assert project["requires-python"] == ">=3.11"
    assert (ROOT / "uv.lock").is_file()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize(("fake_rc", "expect_fail"), [(0, False), (3, True)])
def test_ci_script_runs_the_readme_test_command_and_fails_with_it(tmp_path, fake_rc, expect_fail):
    # a stand-in `uv` records its arguments and exits as a failing (or passing) test run would
    log = tmp_path / "args"
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> "{log}"\nexit {fake_rc}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True,
                          timeout=30)
    assert (proc.returncode != 0) == expect_fail
    assert log.read_text().split() == ["run", "pytest"]


# --- the derivation engine at the top level -------------------------------------------------------


def test_derive_is_exported_at_the_top_level():
    import sympy

    from chainrule.derivation.symbols import yhat

    d = chainrule.derive(activation="sigmoid", loss="bce")
    assert d.result == yhat - sympy.Symbol("y", real=True)
