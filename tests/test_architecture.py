"""The layers of ARCHITECTURE.md, read from the source: what may import what.

Every ``import`` statement of ``src/chainrule`` is read with :mod:`ast`, those inside functions
included (a lazy import is still a dependency: it makes a cycle at run time and ties the layers
together). A failure names the file, the line and the import that breaks the rule.
"""

from __future__ import annotations

import ast
import itertools
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
                 "chainrule._display", "chainrule._figures", "chainrule._mathml",
                 "chainrule._codemath", "chainrule._cache"]),
    ("data and files", ["chainrule.serialization", "chainrule.data", "chainrule.download"]),
    ("nn", ["chainrule.nn"]),
    ("losses and optimizers", ["chainrule.losses", "chainrule.optim"]),
    ("training", ["chainrule.training", "chainrule.fusion"]),
    ("derivation", ["chainrule.derivation"]),
    ("checks and estimators", ["chainrule.gradient_check", "chainrule.sklearn"]),
    ("faces", ["chainrule.cli", "chainrule.__main__", "chainrule._cli", "chainrule.web",
               "chainrule._panels"]),
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
    "platformdirs": ["chainrule.download", "chainrule._cache"],
    "pooch": ["chainrule.download"],
    "requests": ["chainrule.download"],
    "urllib3": ["chainrule.download"],
    # The backward checker's adapters, inside functions, for the user's own PyTorch or JAX code.
    "torch": ["chainrule.gradient_check.backward"],
    "jax": ["chainrule.gradient_check.backward"],
}

# The modules that may load an optional package when they are imported (the others import only
# NumPy and the standard library, also through the chainrule modules they import at the top).
LOADS_EXTRAS = ["chainrule.derivation", "chainrule.gradient_check.symbolic", "chainrule.sklearn",
                "chainrule.web"]

# What the command line and the web application are made of; the library never imports them.
FACES = ["chainrule.cli", "chainrule.__main__", "chainrule._cli", "chainrule.web",
         "chainrule._panels"]
# The command line alone: the web page calls the library as the command line does, through what
# both share (chainrule._panels), never through the command line's parser or its commands.
COMMAND_LINE = ["chainrule.cli", "chainrule.__main__", "chainrule._cli"]

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
    prefix: bool = False  # an f-string: some module under ``target``, named at run time

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


def _imports_of(path: Path) -> tuple[Import, ...]:
    return _parsed_imports(path)


@cache
def _parsed_imports(path: Path) -> tuple[Import, ...]:
    """Each file is parsed once: the rules below walk the import graph many times."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    importer = _module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []

    def record(node, target, name, lazy, prefix=False):
        text = ast.get_source_segment(source, node).splitlines()[0]
        found.append(Import(path, node.lineno, importer, target, name, lazy, text, prefix))

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
            elif isinstance(child, ast.Call) and _is_dynamic_import(child, importers):
                target = _literal_prefix(child.args[0]) if child.args else None
                if target:
                    record(child, target, None, inner, isinstance(child.args[0], ast.JoinedStr))
            visit(child, inner)

    importers = _import_module_names(tree)
    visit(tree, False)
    return tuple(i for i in found if i.target != "__future__")


def _import_module_names(tree: ast.Module) -> set[str]:
    """The names under which a file can call ``importlib.import_module``: ``importlib``'s own
    names (``import importlib as _importlib``) with ``.import_module``, and ``import_module``
    imported by name."""
    names = {"__import__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {f"{a.asname or a.name}.import_module" for a in node.names
                      if a.name == "importlib"}
        elif isinstance(node, ast.ImportFrom) and node.module == "importlib":
            names |= {a.asname or a.name for a in node.names if a.name == "import_module"}
    return names


def _is_dynamic_import(call: ast.Call, importers: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in importers
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and f"{func.value.id}.{func.attr}" in importers)


def _literal_prefix(node: ast.expr) -> str | None:
    """The module a dynamic import names: the whole string of a literal, the text before the
    first placeholder of an f-string (``f"chainrule._cli.{name}"``: ``chainrule._cli``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value.rstrip(".") or None
    return None


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
    _fail([f"{i}: only the faces (cli, __main__, _cli, web, _panels) may import {i.target}"
           for i in _all_imports()
           if _within(i.target, FACES) and not _within(i.importer, FACES)],
          "The library imports a face")


def test_the_web_page_and_what_the_faces_share_stand_on_the_library_not_the_command_line():
    _fail([f"{i}: the web page calls the library through chainrule._panels"
           for i in _all_imports()
           if _within(i.importer, ["chainrule.web", "chainrule._panels"])
           and _within(i.target, COMMAND_LINE)]
          + [f"{i}: what both faces share imports neither of them" for i in _all_imports()
             if _within(i.importer, ["chainrule._panels"])
             and _within(i.target, [*COMMAND_LINE, "chainrule.web"])],
          "A face standing on another face")


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


def _private_home(i: Import) -> str | None:
    """Where the private part of an import may be used, None when nothing in it is private.

    Every part of the full dotted path (``chainrule._cli._faults.check_outputs``) is read: a
    part that starts with ``_`` belongs to what holds it, so a private module is for its own
    package (``chainrule._checks`` for all of chainrule, ``chainrule._cli._faults`` for
    ``chainrule._cli``), and a private name of a module for that module alone (a private name
    of a package's ``__init__`` for that package and its modules). The innermost private part
    decides.
    """
    parts = [*i.target.split("."), *([i.name] if i.name else [])]
    home = None
    for k, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            home = ".".join(parts[:k])
    return home


def _fake_import(importer: str, target: str, name: str | None = None) -> Import:
    return Import(SRC / "chainrule" / "x.py", 1, importer, target, name, False, "")


@pytest.mark.parametrize(("importer", "target", "name", "home"), [
    # a private name of a module is for that module alone, however deep the path
    ("chainrule.data.csvfile", "chainrule.data.dataset", "_class_names", "chainrule.data.dataset"),
    ("chainrule.gradient_check.symbolic", "chainrule.derivation._x", "y", "chainrule.derivation"),
    # a private module is for its package; the innermost private part decides
    ("chainrule._cli.train", "chainrule._cli._faults", "check_outputs", "chainrule._cli"),
    ("chainrule.nn.layers", "chainrule._checks", None, "chainrule"),
    ("chainrule.derivation.api", "chainrule.derivation", "_helper", "chainrule.derivation"),
    ("chainrule.web.tasks", "chainrule.derivation", "library", None),
])
def test_a_private_part_belongs_to_what_holds_it(importer, target, name, home):
    i = _fake_import(importer, target, name)
    assert _private_home(i) == home
    refused = home is not None and not _within(importer, [home])
    expected = importer in ("chainrule.data.csvfile", "chainrule.gradient_check.symbolic")
    assert refused == expected


def test_imports_by_name_at_run_time_are_read():
    # chainrule.cli runs each command with importlib.import_module(f"chainrule._cli.{name}")
    found = [i for i in _all_imports() if i.importer == "chainrule.cli" and i.prefix]
    assert found and {i.target for i in found} == {"chainrule._cli"}
    tree = ast.parse('import importlib as il\nil.import_module("chainrule.nn")\n'
                     'importlib.import_module(f"chainrule.{x}")\nimport_module("chainrule.y")\n')
    importers = _import_module_names(tree)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [_literal_prefix(c.args[0]) for c in calls if _is_dynamic_import(c, importers)] == [
        "chainrule.nn"]  # importlib and import_module are not imported under those names here


def test_no_private_name_is_imported_from_another_part_of_the_package():
    problems = []
    for i in _all_imports():
        home = _private_home(i) if i.target.startswith("chainrule") else None
        if home is not None and not _within(i.importer, [home]):
            what = f"{i.target}.{i.name}" if i.name else i.target
            problems.append(f"{i}: {what} is private to {home}")
    _fail(problems, "Private names used outside the module or package that holds them (make "
                    "them public or move the code)")


def test_the_core_never_imports_scikit_learn():
    code = ("import sys, numpy as np, chainrule, chainrule.nn, chainrule.training, "
            "chainrule.losses, chainrule.optim, chainrule.data, chainrule.serialization; "
            "from chainrule.nn import Dense, Sequential; "
            "m = Sequential([Dense(2, 1)]); m.forward(np.ones((3, 2))); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"


# --- circles and sizes ----------------------------------------------------------------------------


def _module_of(target: str) -> str | None:
    """The module of chainrule that an import runs: the target, or the nearest package above
    it (``from chainrule.nn import Dense`` runs ``chainrule.nn``)."""
    while target:
        if target in _modules():
            return target
        target = target.rpartition(".")[0]
    return None


def _import_graph() -> dict[str, dict[str, Import]]:
    """importer -> {imported module: the first import of it}, lazy imports included; an
    f-string import (``f"chainrule._cli.{name}"``) may run any module under its prefix."""
    graph: dict[str, dict[str, Import]] = {m: {} for m in _modules()}
    for i in _all_imports():
        if not i.target.startswith("chainrule"):
            continue
        targets = [_module_of(i.target)]
        if i.prefix:
            targets += [m for m in _modules() if _within(m, [i.target])]
        for target in targets:
            if target is not None and target != i.importer:
                graph[i.importer].setdefault(target, i)
    return graph


def _circles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One circle through each group of modules that import one another (Tarjan's strongly
    connected components, then a shortest way round from the group's first module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_way_round(graph, group) for group in groups]


def _way_round(graph: dict[str, dict[str, Import]], group: list[str]) -> list[str]:
    """The shortest path from ``group[0]`` back to itself inside ``group``."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return [*paths[v], start]
            if w in members and w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    return group


def test_the_circle_finder_finds_a_circle():
    # not vacuous: a made-up graph with one circle of three modules and a branch off it
    fake = {"a": {"b": None}, "b": {"c": None}, "c": {"a": None, "d": None}, "d": {}}
    assert _circles(fake) == [["a", "b", "c", "a"]]
    assert _circles({"a": {"b": None}, "b": {}}) == []


def test_no_modules_import_each_other_in_a_circle():
    graph = _import_graph()
    problems = []
    for circle in _circles(graph):
        steps = [str(graph[a][b]) for a, b in itertools.pairwise(circle)]
        problems.append(" -> ".join(circle) + "\n      " + "\n      ".join(steps))
    _fail(problems, "Modules that import each other, directly or round a circle, lazy imports "
                    "included (move what both need into a module below them)")


MAX_FILE_LINES = 900
MAX_FUNCTION_LINES = 60


def _code_lines(source: str, tree: ast.Module) -> set[int]:
    """The numbers of the lines that hold code: not blank, not only a comment, not a
    docstring."""
    import io
    import tokenize

    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            lines.difference_update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def _long_functions(source: str, limit: int) -> list[tuple[int, str, int]]:
    """(line, name, code lines) of each function of ``source`` longer than ``limit`` code
    lines, nested functions counted in the function that holds them."""
    tree = ast.parse(source)
    code = _code_lines(source, tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            count = len(code & set(range(node.lineno, node.end_lineno + 1)))
            if count > limit:
                found.append((node.lineno, node.name, count))
    return sorted(found)


def test_the_function_counter_skips_docstrings_comments_and_blank_lines():
    body = "\n".join(f"    x{k} = {k}" for k in range(3))
    source = (f'def f():\n    """One.\n\n    Two.\n    """\n    # a comment\n\n{body}\n'
              '    return """a string that is\n    not a docstring"""\n')
    assert _long_functions(source, 5) == [(1, "f", 6)]  # def, three lines, the two-line return
    assert _long_functions(source, 6) == []


def test_no_file_is_too_long_and_no_function_has_too_many_lines():
    problems = []
    for path in _modules().values():
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(SRC.parent)
        lines = len(source.splitlines())
        if lines > MAX_FILE_LINES:
            problems.append(f"{where}: {lines} lines (at most {MAX_FILE_LINES}; split it by idea)")
        problems += [f"{where}:{line}: {name}() has {count} lines of code (at most "
                     f"{MAX_FUNCTION_LINES}; name its steps as functions)"
                     for line, name, count in _long_functions(source, MAX_FUNCTION_LINES)]
    _fail(problems, "Files and functions too long to read at once")
