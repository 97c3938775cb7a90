"""Rich display in notebooks: HTML and Markdown for reports and training histories.

The ``_repr_html_`` and ``_repr_markdown_`` methods of :class:`~chainrule.training.History`
and of the checkers' results (``GradcheckReport``, ``ModelCheckReport``, ``FormulaCheck`` and
``MatrixCheck``, each a ``CheckResult``: ``correct``, ``kind``, ``sentence``, ...) call the
functions here; Jupyter shows the richest form and a terminal keeps the plain
``repr``. Every fragment is well-formed XML, escapes what it quotes and loads nothing from
the internet (curves are inline SVG). NumPy only.
"""

from __future__ import annotations

from html import escape

import numpy as np

from chainrule._codemath import code_maths, expected_maths, split_definitions
from chainrule._mathml import math_element
from chainrule._svg import line_chart

__all__ = [
    "STYLE",
    "formula_check_html",
    "formula_check_markdown",
    "formula_maths",
    "gradcheck_html",
    "gradcheck_markdown",
    "history_html",
    "history_markdown",
    "model_check_html",
    "model_summary_html",
]

#: The few rules every fragment uses, scoped to chainrule's own classes.
STYLE = (
    "<style>"
    ".chainrule-report table{border-collapse:collapse}"
    ".chainrule-report td,.chainrule-report th{padding:2px 10px;text-align:left;"
    "border-bottom:1px solid #ddd}"
    ".chainrule-verdict{font-weight:bold;padding:1px 8px;border-radius:3px;color:#fff}"
    ".chainrule-verdict.pass{background:#1a7f37}.chainrule-verdict.fail{background:#c62828}"
    ".chainrule-derivation .law{color:#555;font-size:90%}"
    ".chainrule-derivation .singularities,.chainrule-derivation .warnings{border-left:4px solid "
    "#e69f00;padding-left:8px;margin:6px 0}"
    ".chainrule-derivation .warnings{border-color:#c62828}"
    ".chainrule-derivation .form{color:#555;font-size:90%;display:inline-block;width:8em}"
    ".chainrule-derivation .claim{margin:2px 0 6px;overflow-x:auto;display:flex;"
    "align-items:center;gap:14px}"
    ".chainrule-derivation .shape{color:#555;font-size:85%}"
    ".chainrule-derivation table.symbols{border-collapse:collapse;margin:4px 0}"
    ".chainrule-derivation table.symbols td,.chainrule-derivation table.symbols th{"
    "padding:1px 10px;text-align:left;border-bottom:1px solid #ddd}"
    ".chainrule-derivation .result{background:#eef6fb;border-radius:6px;padding:4px 12px}"
    ".chainrule-summary td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".chainrule-check table.forms{width:100%}"
    ".chainrule-check table.forms td{padding:2px 10px;max-width:0;width:100%;overflow-x:auto}"
    ".chainrule-check table.forms th{white-space:nowrap;vertical-align:middle}"
    ".chainrule-check math{math-style:normal}"
    "</style>"
)


def _verdict(ok: bool, yes: str = "passed", no: str = "FAILED") -> str:
    kind = "pass" if ok else "fail"
    return f'<span class="chainrule-verdict {kind}">{yes if ok else no}</span>'


def _table(rows: list[tuple[str, str]]) -> str:
    """A two-column table; the values are HTML already (escape them before)."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[tuple[str, str]]) -> str:
    lines = ["| | |", "| --- | --- |"]
    lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in rows]
    return "\n".join(lines)


# --- gradcheck ----------------------------------------------------------------------------------


def _gradcheck_rows(r) -> list[tuple[str, str]]:
    rows = [("elements checked", f"{r.n_checked}"), ("elements that disagree", f"{r.n_failed}"),
            ("max abs error", f"{r.max_abs_error:.3g}"),
            ("max rel error", f"{r.max_rel_error:.3g}"),
            ("tolerance", f"|G - T| ≤ {r.atol:g} + {r.rtol:g}·|T|")]
    if not r.correct and r.worst_input is not None and np.isfinite(r.claimed_value):
        where = ", ".join(str(int(i)) for i in r.worst_index)
        prefix = f"input {r.worst_input}, " if r.n_inputs > 1 else ""
        rows.append(("worst element", f"{prefix}index ({where})"))
        rows.append(("claimed / numeric", f"{r.claimed_value:.6g} / {r.numeric_value:.6g}"))
    if r.projections:
        rows.append(("array output", f"checked through {r.projections} random projections"))
    if not r.correct:
        if r.kind is not None:
            rows.append(("mistake", r.kind))
        rows.append(("diagnosis", r.sentence))
    return rows


def gradcheck_html(r) -> str:
    """A :class:`GradcheckReport` as a verdict and a small table."""
    rows = [(k, escape(v)) for k, v in _gradcheck_rows(r)]
    return (f'{STYLE}<div class="chainrule-report"><p><strong>{escape(r.label)}</strong> '
            f"{_verdict(r.correct)}</p>{_table(rows)}</div>")


def gradcheck_markdown(r) -> str:
    head = f"**{_md_cell(r.label)}**: {'passed' if r.correct else 'FAILED'}"
    return f"{head}\n\n{_md_table(_gradcheck_rows(r))}\n"


def model_check_html(report) -> str:
    """A ``ModelCheckReport``: the verdict, then one row per layer with its own verdict."""
    rows = []
    for check in report.layers:
        where = "loss" if check.index is None else f"layer {check.index}"
        failure = check.first_failure()
        detail = "" if failure is None else f" in {failure[0]}: {failure[1].sentence}"
        rows.append((where, f"{escape(check.name)} {_verdict(check.passed)}{escape(detail)}"))
    head = escape(str(report).splitlines()[0])
    return (f'{STYLE}<div class="chainrule-report"><p>{_verdict(report.correct)} {head}</p>'
            f"{_table(rows)}</div>")


def model_summary_html(rows: list[tuple[str, str, str, str]], total: str) -> str:
    """A model as a table: one row per layer (position, layer, output shape, parameters) and
    the total, in the manner of Keras' ``summary()``."""
    head = "".join(f"<th>{h}</th>" for h in ("#", "layer", "output shape", "parameters"))
    body = "".join(f"<tr><td>{escape(i)}</td><td><code>{escape(layer)}</code></td>"
                   f"<td><code>{escape(shape)}</code></td>"
                   f'<td class="n">{escape(n)}</td></tr>' for i, layer, shape, n in rows)
    return (f'{STYLE}<div class="chainrule-report chainrule-summary"><p><strong>Sequential'
            f"</strong></p><table><tr>{head}</tr>{body}</table><p>{escape(total)}</p></div>")


# --- check_formula ------------------------------------------------------------------------------


def _finding_rows(check) -> list[tuple[str, str, str, str]]:
    return [(f.position or "", f.term, f.problem, f.should_be + (f" ({f.rule})" if f.rule else ""))
            for f in check.findings]


def _is_matrix(check) -> bool:
    return bool(getattr(check, "shapes", None))


def formula_maths(text: str, matrices: bool, display: bool = False) -> str:
    """A formula typed in Python syntax as a ``<math>`` element (its text as alttext), or as
    ``<code>`` where it is not a formula. A formula with definitions (``A where B = ...,
    C = ...``) is one element per formula, so that a narrow page wraps between them."""
    got = expected_maths(text, matrices) if text else None
    if got is None:
        return f"<code>{escape(text)}</code>"
    head, definitions = split_definitions(text)
    if not definitions:
        return math_element(got[0], text, display=display)
    pieces = [(head, code_maths(head, matrices))]
    for definition in definitions:
        name, _, value = definition.partition(" = ")
        left, right = code_maths(name, matrices), code_maths(value, matrices)
        pieces.append((definition, None if left is None or right is None else
                       (f"<mrow>{left[0]}<mo>=</mo>{right[0]}</mrow>", "")))
    if any(got is None for _, got in pieces):
        return math_element(got[0], text, display=display)
    parts = [math_element(got[0], piece) for piece, got in pieces]
    return f"{parts[0]} where " + ", ".join(parts[1:])


def _forms_table(check) -> str:
    """Your formula, the expected one and, per finding, your term beside what it should be."""
    matrices = _is_matrix(check)
    rows = [("your formula", formula_maths(check.formula, matrices)),
            ("expected", formula_maths(check.expected, matrices))]
    for f in check.findings:
        problem = f'<span class="problem">{escape(f.problem)}</span>'
        if f.term == check.formula and f.should_be == check.expected:
            rows.append(("difference", problem))
        else:
            rows.append(("difference", f"{formula_maths(f.term, matrices)} &#8594; "
                                       f"{formula_maths(f.should_be, matrices)} ({problem})"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="forms">{body}</table>'


def formula_check_html(check, style: bool = True) -> str:
    """A ``FormulaCheck`` or ``MatrixCheck``: the verdict with the formula set as maths, the
    paragraph, then (when wrong) your formula, the expected one and the difference as maths,
    and one row per finding (``style``: with the ``<style>`` element, which a page with its
    own style sheet leaves out)."""
    verdict = _verdict(check.correct, "correct", "not correct")
    formula = formula_maths(check.formula, _is_matrix(check))
    parts = [f'{STYLE if style else ""}<div class="chainrule-report chainrule-check" '
             f'data-correct="{str(check.correct).lower()}">',
             f"<p>{verdict} {formula} as d/d{escape(check.variable)} "
             f"of the {escape(check.of)}</p>",
             f'<p class="paragraph">{escape(check.sentence)}</p>']
    if not check.correct:
        parts.append(_forms_table(check))
    if not check.correct and check.findings:
        head = "".join(f"<th>{h}</th>" for h in ("where", "your term", "problem", "should be"))
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                       for row in _finding_rows(check))
        parts.append(f'<table class="findings"><tr>{head}</tr>{body}</table>')
    parts.append("</div>")
    return "".join(parts)


def formula_check_markdown(check) -> str:
    lines = [_md_cell(check.sentence)]
    for label, text in (("Your formula", check.formula), ("Expected", check.expected)):
        got = expected_maths(text, _is_matrix(check)) if text else None
        if got is not None and not check.correct:
            lines += ["", f"{label}: ${got[1]}$"]
    if not check.correct and check.findings:
        lines += ["", "| where | your term | problem | should be |", "| --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |"
                  for row in _finding_rows(check)]
    return "\n".join(lines) + "\n"


# --- History ------------------------------------------------------------------------------------


def _history_summary(h) -> str:
    if not h.loss:
        return "no epoch run"
    parts = [f"{h.epochs_run} epochs", f"final loss {h.loss[-1]:.4g}"]
    if h.accuracy:
        parts.append(f"accuracy {h.accuracy[-1]:.4g}")
    if h.val_loss:
        parts.append(f"validation loss {h.val_loss[-1]:.4g}")
    if h.best_epoch is not None:
        parts.append(f"best epoch {h.best_epoch}")
    if h.stopped_early:
        parts.append("stopped early")
    if h.interrupted:
        parts.append("interrupted")
    return ", ".join(parts)


def _curves(h, pairs) -> list[tuple[str, np.ndarray, np.ndarray]]:
    epochs = np.asarray(h.epoch, dtype=float)
    return [(label, epochs, np.asarray(values, dtype=float))
            for label, values in pairs if len(values) == len(epochs) and len(values)]


def history_html(h) -> str:
    """A training :class:`History` as its loss curve and, where recorded, its accuracy curve
    (validation dashed), with a one-line summary."""
    parts = [f'{STYLE}<div class="chainrule-report chainrule-history">',
             f"<p><strong>History</strong>: {escape(_history_summary(h))}</p>"]
    if len(h.epoch) >= 1:
        for name, pairs in (
            ("loss", [("loss", h.loss), ("validation loss", h.val_loss)]),
            ("accuracy", [("accuracy", h.accuracy), ("validation accuracy", h.val_accuracy)]),
        ):
            series = _curves(h, pairs)
            if series:
                dashed = tuple(i for i, s in enumerate(series) if s[0].startswith("validation"))
                parts.append(line_chart(series, x_label="epoch", y_label=name, dashed=dashed,
                                        title=f"{name} by epoch", width=420, height=240))
    parts.append("</div>")
    return "".join(parts)


def history_markdown(h, last: int = 20) -> str:
    """The last ``last`` epochs as a Markdown table."""
    columns = [(n, getattr(h, n)) for n in ("loss", "accuracy", "val_loss", "val_accuracy")
               if len(getattr(h, n)) == len(h.epoch) and getattr(h, n)]
    lines = [f"**History**: {_history_summary(h)}"]
    if h.epoch:
        lines += ["", "| epoch | " + " | ".join(n for n, _ in columns) + " |",
                  "| --- |" + " --- |" * len(columns)]
        for i in range(max(0, len(h.epoch) - last), len(h.epoch)):
            lines.append(f"| {h.epoch[i]} | " + " | ".join(f"{v[i]:.4g}" for _, v in columns)
                         + " |")
    return "\n".join(lines) + "\n"
