"""The answer of :func:`check_backward`: one :class:`BackwardCheck` holding one
:class:`InputCheck` per input, both :class:`~chainrule.gradient_check.catalogue.CheckResult`\\ s."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from chainrule.gradient_check.catalogue import CheckResult

__all__ = ["BackwardCheck", "InputCheck"]


@dataclass
class InputCheck(CheckResult):
    """The check of one input's gradient.

    Besides the fields of every result: ``index`` and ``name`` of the input; ``location``
    (where it differs, in words: ``"column 2"``, ``"every element"``; None when it passed);
    ``factor`` (for a constant factor); ``max_abs_error`` and ``max_rel_error``; how many
    elements were ``n_checked`` and ``n_failed``; ``method`` (every element, or random
    directions and a sample); ``claimed`` and ``numeric`` (the compared stacks, one gradient
    per cotangent; NaN where an element was not computed; not part of :meth:`to_dict`).
    """

    index: int = 0
    name: str = ""
    location: str | None = None
    factor: float | None = None
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    n_checked: int = 0
    n_failed: int = 0
    method: str = ""
    claimed: object = field(default=None, repr=False)
    numeric: object = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"input {self.index} ({self.name})" if self.name else f"input {self.index}"

    def to_dict(self) -> dict:
        """Every field but the arrays; an infinite error as the string ``"inf"`` (JSON has no
        infinity)."""
        out = {}
        for key, value in vars(self).items():
            if key in ("claimed", "numeric"):
                continue
            if isinstance(value, float | np.floating):
                value = float(value) if np.isfinite(value) else str(float(value))
            out[key] = value
        return out


@dataclass
class BackwardCheck(CheckResult):
    """The check of a whole backward pass: ``correct`` when every input's gradient passed and
    the backward neither changed its inputs nor gave different answers to the same question;
    ``kind``, ``where`` and ``sentence`` of the first problem; ``inputs`` (one
    :class:`InputCheck` each); ``subject`` and ``framework`` (what was checked); ``computed_in``
    (the dtype the forward ran in for the differences); ``notes`` (what else a person should
    know: float32 rounding, inputs not checked)."""

    subject: str = ""
    framework: str = ""
    computed_in: str = "float64"
    cotangents: int = 0
    inputs: list[InputCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key) -> InputCheck:
        """An input's check, by position or by name."""
        for check in self.inputs:
            if key in (check.index, check.name):
                return check
        raise KeyError(f"no input {key!r}; the inputs are "
                       f"{', '.join(c.label for c in self.inputs)}")

    def __str__(self) -> str:
        head = (f"check_backward({self.subject}, {self.framework}): "
                + ("passed" if self.correct else "FAILED"))
        lines = [head]
        for check in self.inputs:
            lines.append(f"  {check.sentence}")
        if self.kind in ("inputs_modified", "nondeterministic"):
            lines.append(f"  {self.sentence}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if not self.correct and self.mistake is not None:
            lines.append(f"  fix: {self.mistake.fix}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "inputs"}
        out["inputs"] = [check.to_dict() for check in self.inputs]
        return out

    def _repr_html_(self) -> str:
        """In a notebook: the verdict and one table row per input (text escaped)."""
        colour = "#1a7f37" if self.correct else "#cf222e"
        verdict = "passed" if self.correct else "FAILED"
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(c.label), "passed" if c.correct else "failed",
                html.escape(c.kind or ""), html.escape(c.sentence))
            for c in self.inputs)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        extra = (f"<p>{html.escape(self.sentence)}</p>"
                 if self.kind in ("inputs_modified", "nondeterministic") else "")
        return (
            f"<div><p><b>check_backward({html.escape(self.subject)})</b>: "
            f"<span style='color:{colour}'>{verdict}</span></p>{extra}"
            "<table><tr><th>input</th><th>verdict</th><th>kind</th><th>why</th></tr>"
            f"{rows}</table>" + (f"<ul>{notes}</ul>" if notes else "") + "</div>"
        )
