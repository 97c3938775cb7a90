"""Sphinx configuration of the chainrule documentation.

Build (warnings are errors)::

    uv run --group docs sphinx-build -W --keep-going -b html docs docs/_build/html

Nothing is loaded from the internet, when building or reading: the theme's files are local and
maths is written into the pages as MathML (``_ext/mathml.py``). The tutorials
(``tutorials/*.md``, MyST-NB text notebooks) are executed by each build.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import chainrule  # noqa: E402

project = "chainrule"
author = "chainrule developers"
copyright = "chainrule developers"
release = version = chainrule.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
    "clihelp",
    "mathml",
]

#: The modules whose every public name (``__all__``) gets a reference page.
API_MODULES = ["chainrule", "chainrule.nn", "chainrule.losses", "chainrule.optim",
               "chainrule.sklearn"]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
# notebook.ipynb is the README's notebook (tests/test_notebook.py), not a page of the site.
exclude_patterns = ["_build", "notebook.ipynb", "**.ipynb_checkpoints",
                    "_templates", "tutorials/_outputs", "tutorials/record.py"]
templates_path = ["_templates"]

# --- API reference: one page per name of each module's __all__ -------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's members are its __all__, in that order
autosummary_imported_members = True  # the names are re-exported from private modules
autosummary_context = {"api_modules": API_MODULES}
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
autoclass_content = "class"
numpydoc_show_class_members = False  # a class page documents its methods (autodoc :members:)
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False

# --- notebooks (MyST-NB) ---------------------------------------------------------------------
nb_execution_mode = "force"  # every build runs the tutorials, so their outputs are current
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_timeout = 300  # seconds per cell
nb_execution_show_tb = True
nb_execution_in_temp = True  # files a tutorial writes (a data subset, a model) stay out of docs/
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]

# --- HTML ------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"chainrule {release}"
html_math_renderer = "mathml"
html_static_path: list[str] = []
html_show_sourcelink = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out the members a class inherits from scikit-learn's machinery (the generated
    ``set_fit_request`` and the like): they are scikit-learn's, documented there."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.split(".")[0] == "sklearn":
        return True
    return None


def _attribute_comment(name: str, obj) -> list[str]:
    """The ``#:`` comment above ``name`` in the chainrule module that defines ``obj`` under that
    name (a module re-exporting it has none); searched among the modules already imported."""
    from sphinx.pycode import ModuleAnalyzer, PycodeError

    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("chainrule.") or getattr(module, name, None) is not obj:
            continue
        try:
            comments = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except PycodeError:
            continue
        if ("", name) in comments:
            return list(comments[("", name)])
    return []


def _data_docstring(app, what, name, obj, options, lines):
    """A constant's description: its ``#:`` comment where it is defined, never the docstring
    of its type (``str``, ``dict``) that autodoc falls back to."""
    if what not in ("data", "attribute"):
        return
    own = "\n".join(lines).strip()
    if own and own != (type(obj).__doc__ or "").strip():
        return
    lines[:] = _attribute_comment(name.rpartition(".")[2], obj)


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # Before numpydoc (priority 500), which rewrites every docstring, an empty one too.
    app.connect("autodoc-process-docstring", _data_docstring, priority=400)
