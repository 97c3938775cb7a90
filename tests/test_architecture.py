"""The layers of ARCHITECTURE.md, read from the source: what may import what.

Every ``import`` statement of ``src/chainrule`` is read with :mod:`ast`, those inside functions
included (a lazy import is still a dependency: it makes a cycle at run time and ties the layers
together). A failure names the file, the line and the import that breaks the rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Bottom to top: a module may import its own layer and the layers below it, never one above.
# A module belongs to the first entry that is its name or a package above it.
LAYERS = [
    ("helpers", ["chainrule", "chainrule._checks", "chainrule._numerics", "chainrule._erf",
                 "chainrule._registry", "chainrule._oracle", "chainrule._io", "chainrule._extras",
                 "chainrule._svg", "chainrule._threads", "chainrule._progress",
                 "chainrule._display", "chainrule._figures"]),
    ("data and files", ["chainrule.serialization", "chainrule.data", "chainrule.download"]),
    ("nn", ["chainrule.nn"]),
    ("losses and optimizers", ["chainrule.losses", "chainrule.optim"]),
    ("training", ["chainrule.training"]),
    ("derivation", ["chainrule.derivation"]),
    ("checks and estimators", ["chainrule.gradient_check", "chainrule.sklearn"]),
    ("faces", ["chainrule.cli", "chainrule.__main__", "chainrule._cli", "chainrule.web"]),
]

# Optional packages (not dependencies of chainrule) and the only modules that may import them,
# at the top or inside a function. NumPy, the one dependency, may be imported anywhere.
OPTIONAL = {
    "sympy": ["chainrule.derivation", "chainrule.gradient_check.symbolic", "chainrule.web.tasks"],
    "mpmath": ["chainrule.derivation"],
    "sklearn": ["chainrule.sklearn"],
    "scipy": ["chainrule.sklearn"],
    "matplotlib": ["chainrule.derivation.plot", "chainrule._cli._plotting"],
    "starlette": ["chainrule.web"],
    "uvicorn": ["chainrule._cli.serve"],
    "threadpoolctl": ["chainrule._threads"],
    "platformdirs": ["chainrule.download"],
    "pooch": ["chainrule.download"],
    "requests": ["chainrule.download"],
    "tqdm": ["chainrule.download"],
}

# The modules that may load an optional package when they are imported (the others import only
# NumPy and the standard library, also through the chainrule modules they import at the top).
LOADS_EXTRAS = ["chainrule.derivation", "chainrule.gradient_check.symbolic", "chainrule.sklearn",
                "chainrule.web"]

# What the command line and the web application are made of; the library never imports them.
FACES = ["chainrule.cli", "chainrule.__main__", "chainrule._cli", "chainrule.web"]

# The one import of a higher layer that is allowed, inside functions only: Sequential.fit and
# Sequential.evaluate hand the model to training.fit / training.evaluate (the Keras-style
# methods users expect), importing training when called. nn never loads it when imported.
DELEGATIONS = {("chainrule.nn.model", "chainrule.training")}

# What nn may not import: everything built on top of it.
ABOVE_NN = ["chainrule.losses", "chainrule.optim", "chainrule.training", "chainrule.derivation",
            "chainrule.gradient_check", "chainrule.sklearn", *FACES]


@dataclass(frozen=True)
class Import:
    """One imported name (or module) of one ``import`` statement."""

    path: Path  # the importing file
    line: int
    importer: str  # the importing module, dotted
    target: str  # the module imported (for ``from m import n``: m.n when that is a module)
    name: str | None  # the name imported from ``target``, None when it is the module itself
    lazy: bool  # inside a function: runs when the function is first called
    text: str  # the statement as written

    def __str__(self) -> str:
        where = " (inside a function)" if self.lazy else ""
        return f"{self.path.relative_to(SRC.parent)}:{self.line}: {self.text}{where}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module and package of src/chainrule."""
    return {_module_name(p): p for p in sorted((SRC / "chainrule").rglob("*.py"))}


def _within(module: str, prefixes: list[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _imports_of(path: Path) -> list[Import]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    importer = _module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []

    def record(node, target, name, lazy):
        text = ast.get_source_segment(source, node).splitlines()[0]
        found.append(Import(path, node.lineno, importer, target, name, lazy, text))

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    record(child, alias.name, None, inner)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the package, one level up per extra dot
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in child.names:
                    dotted = f"{base}.{alias.name}"
                    if dotted in _modules():
                        record(child, dotted, None, inner)
                    else:
                        record(child, base, alias.name, inner)
            visit(child, inner)

    visit(tree, False)
    return [i for i in found if i.target != "__future__"]


@cache
def _all_imports() -> tuple[Import, ...]:
    return tuple(i for path in _modules().values() for i in _imports_of(path))


def _layer(module: str) -> int | None:
    for index, (_, members) in enumerate(LAYERS):
        if module in members or _within(module, [m for m in members if m != "chainrule"]):
            return index
    return None


def _third_party(target: str) -> str | None:
    top = target.split(".")[0]
    if top == "chainrule" or top in sys.stdlib_module_names:
        return None
    return top


def _fail(problems: list[str], rule: str) -> None:
    if problems:
        pytest.fail(f"{rule}:\n" + "\n".join(f"  {p}" for p in problems), pytrace=False)


# --- the rules ------------------------------------------------------------------------------------


def test_the_source_is_read():
    # not vacuous: the walk finds the modules and their imports, lazy ones included
    imports = _all_imports()
    assert {"chainrule.nn.model", "chainrule.derivation.api", "chainrule.cli"} <= set(_modules())
    assert any(i.lazy for i in imports) and any(not i.lazy for i in imports)
    assert any(i.target == "numpy" for i in imports)


def test_every_module_is_in_a_layer():
    _fail([f"{_modules()[m].relative_to(SRC.parent)}: {m}" for m in _modules()
           if _layer(m) is None],
          "Modules in no layer (add each to LAYERS here and to ARCHITECTURE.md)")


def _delegation(i: Import) -> bool:
    return i.lazy and (i.importer, i.target) in DELEGATIONS


def test_nn_imports_nothing_built_on_top_of_it():
    _fail([f"{i}: nn may not import {i.target}" for i in _all_imports()
           if _within(i.importer, ["chainrule.nn"]) and _within(i.target, ABOVE_NN)
           and not _delegation(i)],
          "nn imports a layer above it (losses, optimizers, training, the derivation engine, "
          "the checks, the estimators or a face), even lazily")


def test_every_module_imports_only_its_own_layer_and_those_below():
    names = [name for name, _ in LAYERS]
    problems = []
    for i in _all_imports():
        mine, theirs = _layer(i.importer), _layer(i.target)
        if (i.target.startswith("chainrule") and None not in (mine, theirs) and theirs > mine
                and not _delegation(i)):
            problems.append(f"{i}: layer '{names[mine]}' may not import layer '{names[theirs]}'")
    _fail(problems, "Imports of a higher layer")


def test_the_library_never_imports_the_command_line_or_the_web_application():
    _fail([f"{i}: only the faces (cli, __main__, _cli, web) may import {i.target}"
           for i in _all_imports()
           if _within(i.target, FACES) and not _within(i.importer, FACES)],
          "The library imports a face")


def test_the_derivation_engine_imports_no_face_nor_the_estimators():
    _fail([f"{i}" for i in _all_imports() if _within(i.importer, ["chainrule.derivation"])
           and _within(i.target, [*FACES, "chainrule.sklearn", "chainrule.gradient_check"])],
          "The derivation engine imports a face, the estimators or the checks")


def test_optional_packages_are_imported_only_where_they_are_used():
    problems = []
    for i in _all_imports():
        package = _third_party(i.target)
        if package is None or package == "numpy":
            continue
        if package not in OPTIONAL:
            problems.append(f"{i}: {package} is neither NumPy nor an optional package known here")
        elif not _within(i.importer, OPTIONAL[package]):
            problems.append(f"{i}: only {', '.join(OPTIONAL[package])} may import {package}")
    _fail(problems, "Optional packages imported elsewhere")


def _loaded_at_import(module: str) -> list[tuple[list[Import], str]]:
    """The optional packages that importing ``module`` loads: (the chain of top-level imports
    that leads there, the package), following chainrule's own modules and their packages."""
    found, seen, todo = [], {module}, [(module, [])]
    while todo:
        current, chain = todo.pop()
        parents = [".".join(current.split(".")[:k]) for k in range(1, current.count(".") + 1)]
        for step in [*parents, current]:
            if step not in seen and step in _modules():
                seen.add(step)
                todo.append((step, chain))
        if current not in _modules():
            continue
        for i in _imports_of(_modules()[current]):
            if i.lazy:
                continue
            package = _third_party(i.target)
            if package not in (None, "numpy"):
                found.append(([*chain, i], package))
            elif i.target.startswith("chainrule") and i.target not in seen:
                seen.add(i.target)
                todo.append((i.target, [*chain, i]))
    return found


def test_the_core_and_the_command_line_import_only_numpy_at_import_time():
    problems = []
    for module in _modules():
        if _within(module, LOADS_EXTRAS):
            continue
        for chain, package in _loaded_at_import(module):
            steps = " -> ".join(str(i) for i in chain)
            problems.append(f"import {module} loads {package}: {steps}")
    _fail(problems, "Modules that load more than NumPy when imported")


def test_only_the_atomic_writer_replaces_files():
    problems = []
    for module, path in _modules().items():
        if module == "chainrule._io":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in ("replace", "rename")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                problems.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: os.{node.attr}")
    _fail(problems, "Files replaced outside chainrule._io.atomic_write")


def _part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_private_name_is_imported_from_another_part_of_the_package():
    _fail([f"{i}: {i.name} is private to {_part(i.target)}" for i in _all_imports()
           if i.target.startswith("chainrule") and i.name and i.name.startswith("_")
           and not i.name.startswith("__") and _part(i.target) != _part(i.importer)],
          "Private names used across modules (make them public or move the code)")


def test_the_core_never_imports_scikit_learn():
    code = ("import sys, numpy as np, chainrule, chainrule.nn, chainrule.training, "
            "chainrule.losses, chainrule.optim, chainrule.data, chainrule.serialization; "
            "from chainrule.nn import Dense, Sequential; "
            "m = Sequential([Dense(2, 1)]); m.forward(np.ones((3, 2))); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
