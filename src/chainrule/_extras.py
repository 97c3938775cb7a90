"""One line, not a traceback, when an optional dependency is missing: which extra to install."""

from __future__ import annotations

#: Importable name -> (distribution name, the chainrule extra that installs it).
EXTRAS = {
    "sympy": ("SymPy", "derive"),
    "matplotlib": ("matplotlib", "plot"),
    "sklearn": ("scikit-learn", "sklearn"),
    "scipy": ("SciPy", "sklearn"),
    "pooch": ("pooch", "data"),
    "platformdirs": ("platformdirs", "data"),
    "starlette": ("Starlette", "web"),
    "uvicorn": ("uvicorn", "web"),
}


def install_hint(extra: str) -> str:
    """How to install an extra, from a clone today and from the package index once published."""
    return (f'pip install ".[{extra}]" in a clone of chainrule (pip install "chainrule[{extra}]" '
            "once it is published)")


def missing_extra(exc: ModuleNotFoundError, feature: str, extra: str | None = None) -> ImportError:
    """An ImportError whose one-line message names the missing package and the extra to install.

    ``exc`` is the original error (its ``name`` is the missing module); ``feature`` says what
    needed it ("chainrule derive", "chainrule.sklearn").
    """
    top = (exc.name or "").split(".")[0]
    package, default_extra = EXTRAS.get(top, (top or "a package", extra or "all"))
    extra = extra or default_extra
    error = ImportError(f"{feature} needs {package}, which is not installed: "
                        f"{install_hint(extra)}.")
    error.name = exc.name
    return error
