r"""Presentation MathML from the two ways chainrule writes maths: LaTeX and Unicode prose.

A derivation's formulas exist as LaTeX (``H_1^\top\,\Delta_2 / m``); its explanations are
sentences with maths inside (``∂E/∂w_jk = (1/m) Σ_i h_ij δ_ik``). :func:`latex_mathml` reads
the LaTeX that chainrule's printers write (fractions, scripts, ``\left( \right)``, sums with
limits, accents, ``cases``) and :func:`prose_html` finds the maths in a sentence and writes it
as inline MathML (:func:`prose_latex` as inline LaTeX), so the page, the notebook and Markdown
show one rendering. Every ``<math>`` element carries an ``alttext`` (its plain text), the minus
sign is U+2212 and a hat is an accent (``<mover accent="true">``). Standard library only.

>>> latex_mathml(r"X^\top")
'<msup><mi>X</mi><mo>⊤</mo></msup>'
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["latex_mathml", "math_element", "prose_html", "prose_latex", "prose_maths", "segments",
           "text_of"]

NAMESPACE = "http://www.w3.org/1998/Math/MathML"

_GREEK = {name: chr(code) for name, code in (
    ("alpha", 0x3B1), ("beta", 0x3B2), ("gamma", 0x3B3), ("delta", 0x3B4), ("epsilon", 0x3F5),
    ("varepsilon", 0x3B5), ("eta", 0x3B7), ("theta", 0x3B8), ("lambda", 0x3BB), ("mu", 0x3BC),
    ("pi", 0x3C0), ("sigma", 0x3C3), ("tau", 0x3C4), ("phi", 0x3D5), ("psi", 0x3C8),
    ("omega", 0x3C9), ("Gamma", 0x393), ("Delta", 0x394), ("Theta", 0x398), ("Lambda", 0x39B),
    ("Sigma", 0x3A3), ("Phi", 0x3A6), ("Omega", 0x3A9), ("xi", 0x3BE), ("kappa", 0x3BA))}
_OPERATORS = {"top": "⊤", "odot": "⊙", "cdot": "⋅", "times": "×", "le": "≤", "leq": "≤",
              "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "leftarrow": "←", "to": "→",
              "rightarrow": "→", "infty": "∞", "pm": "±", "approx": "≈", "in": "∈",
              "ldots": "…", "cdots": "⋯", "prime": "′", "mid": "∣", "otimes": "⊗",
              "star": "⋆", "ast": "∗", "lfloor": "⌊", "rfloor": "⌋"}
_BIG = {"sum": "∑", "prod": "∏"}
_FUNCTIONS = {"log", "ln", "exp", "sin", "cos", "tan", "tanh", "sinh", "cosh", "max", "min",
              "det", "operatorname", "diag", "sign"}
_SPACES = {",": "0.167em", ":": "0.222em", ";": "0.278em", " ": "0.25em", "quad": "1em",
           "qquad": "2em", "!": "0em"}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d+(?:\.\d+)?|\s+|.", re.S)


def text_of(body: str) -> str:
    """The text content of MathML (tags dropped, entities read): a fallback ``alttext``."""
    from html import unescape

    text = unescape(re.sub(r"<[^>]+>", " ", body))
    return re.sub(r"\s+", " ", text.replace("\u2062", "")).strip()


def math_element(body: str, alttext: str | None = None, display: bool = False) -> str:
    """One ``<math>`` element around the MathML ``body``, with ``alttext`` (the body's text
    when None) and ``display="block"`` for displayed maths."""
    alt = text_of(body) if alttext is None else alttext
    mode = ' display="block"' if display else ""
    return (f'<math xmlns="{NAMESPACE}"{mode} alttext="{escape(alt, quote=True)}">'
            f"{body}</math>")


# --- LaTeX --------------------------------------------------------------------------------------


def _mo(op: str) -> str:
    return f"<mo>{escape('−' if op == '-' else op)}</mo>"


def _row(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "<mrow>" + "".join(items) + "</mrow>"


class _Latex:
    """A recursive reader of the LaTeX subset chainrule's printers write."""

    def __init__(self, tex: str):
        self.tokens = [t for t in _TOKEN.findall(tex) if not t.isspace()]
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.i += token is not None
        return token

    def sequence(self, stop=("}",)) -> list[str]:
        items: list[str] = []
        while self.peek() is not None and self.peek() not in stop:
            token = self.peek()
            if token == "\\right" or (token.startswith("\\end")):
                break
            if token in ("^", "_"):  # a script with an empty base
                items.append(self.scripts("<mrow></mrow>", big=False))
                continue
            big = token[1:] in _BIG
            items.append(self.scripts(self.primary(), big))
        return items

    def argument(self) -> str:
        """A braced group or a single token."""
        if self.peek() == "{":
            self.take()
            items = self.sequence()
            self.take()
            return _row(items) if items else "<mrow></mrow>"
        return self.primary()

    def scripts(self, base: str, big: bool) -> str:
        sub = sup = None
        while self.peek() in ("_", "^", "'"):
            token = self.take()
            if token == "'":
                sup = _mo("′")
            elif token == "_":
                sub = self.argument()
            else:
                sup = self.argument()
        if sub is None and sup is None:
            return base
        tags = ("munder", "mover", "munderover") if big else ("msub", "msup", "msubsup")
        if sup is None:
            return f"<{tags[0]}>{base}{sub}</{tags[0]}>"
        if sub is None:
            return f"<{tags[1]}>{base}{sup}</{tags[1]}>"
        return f"<{tags[2]}>{base}{sub}{sup}</{tags[2]}>"

    def primary(self) -> str:
        token = self.take()
        if token is None:
            return "<mrow></mrow>"
        if token == "{":
            items = self.sequence()
            self.take()
            return _row(items) if items else "<mrow></mrow>"
        if token.startswith("\\"):
            return self.command(token[1:])
        if token[0].isdigit():
            return f"<mn>{token}</mn>"
        if token.isalpha():
            return f"<mi>{escape(token)}</mi>"
        return _mo(token)

    def delimiter(self) -> str:
        token = self.take() or "."
        if token == ".":
            return ""
        token = {"\\{": "{", "\\}": "}", "\\|": "‖", "\\lbrace": "{", "\\rbrace": "}"}.get(
            token, token)
        return _mo(token)

    def command(self, name: str) -> str:
        if name in ("frac", "dfrac", "tfrac"):
            top = self.argument()
            return f"<mfrac>{top}{self.argument()}</mfrac>"
        if name == "sqrt":
            return f"<msqrt>{self.argument()}</msqrt>"
        if name == "left":
            opening = self.delimiter()
            inner = self.sequence(stop=())
            self.take()  # \right
            return "<mrow>" + opening + "".join(inner) + self.delimiter() + "</mrow>"
        if name in ("hat", "widehat", "bar", "overline", "tilde", "vec", "dot"):
            accent = {"hat": "^", "widehat": "^", "bar": "¯", "overline": "¯", "tilde": "~",
                      "vec": "→", "dot": "˙"}[name]
            return f'<mover accent="true">{self.argument()}<mo>{accent}</mo></mover>'
        if name in ("operatorname", "mathrm", "text", "textrm", "mathit", "mathbf", "mathbb"):
            return self.styled(name)
        if name == "begin":
            return self.environment()
        if name in _GREEK:
            return f"<mi>{_GREEK[name]}</mi>"
        if name in _BIG:
            return f'<mo largeop="true" movablelimits="false">{_BIG[name]}</mo>'
        if name in _OPERATORS:
            return _mo(_OPERATORS[name])
        if name == "partial":
            return '<mi mathvariant="normal">∂</mi>'
        if name in _SPACES:
            return f'<mspace width="{_SPACES[name]}"/>'
        if name in ("{", "}", "|", "%", "&", "#", "_", "$"):
            return _mo(name)
        if name in _FUNCTIONS:
            return f"<mi>{name}</mi><mo>&#8289;</mo>"
        return f"<mi>{escape(name)}</mi>"  # a name this reader does not know, shown as written

    def raw_group(self) -> str:
        """The text of a braced group, as written."""
        if self.peek() != "{":
            return self.take() or ""
        self.take()
        depth, out = 1, []
        while self.peek() is not None:
            token = self.take()
            depth += (token == "{") - (token == "}")
            if depth == 0:
                break
            out.append(token)
        return "".join(out)

    def styled(self, name: str) -> str:
        if name in ("text", "textrm"):
            text = self.raw_group().replace("\\", "")
            return f"<mtext>{escape(text)}</mtext>"
        if name == "operatorname":
            return f"<mi>{escape(self.raw_group())}</mi><mo>&#8289;</mo>"
        variant = {"mathrm": "normal", "mathit": "italic", "mathbf": "bold",
                   "mathbb": "double-struck"}[name]
        inner = self.raw_group()
        tag = "mn" if inner.isdigit() else "mi"
        return f'<{tag} mathvariant="{variant}">{escape(inner)}</{tag}>'

    def environment(self) -> str:
        name = self.raw_group()
        rows, cells, current = [], [], []
        while self.peek() is not None and not self.peek().startswith("\\end"):
            if self.peek() == "&":
                self.take()
                cells.append(_row(current) if current else "")
                current = []
            elif self.peek() == "\\\\":
                self.take()
                rows.append([*cells, _row(current) if current else ""])
                cells, current = [], []
            else:
                items = self.sequence(stop=("&", "\\\\"))
                if not items:  # a stray \right: skip it, so the reading always moves on
                    self.take()
                current.extend(items)
        if current or cells:
            rows.append([*cells, _row(current) if current else ""])
        self.take()
        self.raw_group()
        table = "<mtable columnalign=\"left\">" + "".join(
            "<mtr>" + "".join(f"<mtd>{c}</mtd>" for c in row) + "</mtr>" for row in rows
        ) + "</mtable>"
        if name == "cases":
            return f"<mrow><mo>{{</mo>{table}</mrow>"
        if name in ("pmatrix", "bmatrix"):
            left, right = ("(", ")") if name == "pmatrix" else ("[", "]")
            return f"<mrow><mo>{left}</mo>{table}<mo>{right}</mo></mrow>"
        return table


def latex_mathml(tex: str) -> str:
    r"""The presentation MathML (without ``<math>``) of ``tex``, written in the subset that
    chainrule's printers use: ``\frac``, ``_`` and ``^``, ``\left( \right)``, ``\sum`` with
    limits (``<munderover>``), ``\hat`` (an accent), ``\top``, ``\odot``, Greek letters,
    ``\operatorname``, ``\mathbf``, ``\text`` and the ``cases`` environment."""
    reader = _Latex(tex)
    items = []
    while reader.peek() is not None:
        items.extend(reader.sequence(stop=()))
        if reader.peek() is not None:  # a stray closing brace or \right
            reader.take()
    return _row(items) if items else "<mrow></mrow>"


# --- Unicode prose -------------------------------------------------------------------------------

_SUBSCRIPT_DIGITS = "₀₁₂₃₄₅₆₇₈₉"
_SUPERSCRIPTS = {"²": "2", "³": "3", "ᵀ": "⊤", "'": "′", "⁻¹": "−1"}
_NAMES = {"relu", "sigmoid", "softmax", "tanh", "log", "exp", "diag", "softplus", "max", "min",
          "elu", "gelu", "swish", "leaky_relu", "selu", "sum", "mean", "rank", "sign", "abs"}
_LETTERS = "A-Za-zα-ωΑ-ΩŷŶŝ"
_WORD = re.compile(rf"[{_LETTERS}]+")
_CODE_WORD = re.compile(r"[A-Za-z]{2,}\d+|\d+(?:-\d+)+")  # float64, sizes 2-3-2: words
_PROSE_TOKEN = re.compile(
    rf"[A-Za-z]{{2,}}\d+(?![\w₀-₉])|\d+(?:-\d+)+|[{_LETTERS}]+|\d+(?:\.\d+)?"
    rf"|[{_SUBSCRIPT_DIGITS}]+|\.\.|\s+|.", re.S)


def _is_prose_word(tokens: list[str], k: int) -> bool:
    """Whether ``tokens[k]`` (letters) is a word of the sentence rather than maths."""
    word, after = tokens[k], (tokens[k + 1] if k + 1 < len(tokens) else "")
    before = tokens[k - 1] if k else ""
    nxt = tokens[k + 2] if k + 2 < len(tokens) else ""
    if before in ("_", "^") or after in ("_", "^", "ᵀ", "²", "³") or (
            after[:1] in _SUBSCRIPT_DIGITS and after):
        return False
    if word.lower() in _NAMES:  # relu(Z₁), sigmoid'(Z₂), log ŷ: maths; "the relu is": prose
        return not (after in ("(", "'") or (after.isspace() and len(nxt) == 1 and nxt.isalpha()))
    if len(word) == 1:
        if before == "'" or after == ".":  # "layer's", "e.g."
            return True
        return word in ("a", "A", "I") and after.isspace() and len(nxt) > 1 and nxt.isalpha()
    return True


def _kind(tokens: list[str], k: int) -> str:
    """``"prose"``, ``"maths"`` or ``"either"`` (spaces and brackets join the run around)."""
    token = tokens[k]
    last = k + 1 == len(tokens) or tokens[k + 1].isspace()
    if _WORD.fullmatch(token):
        return "prose" if _is_prose_word(tokens, k) else "maths"
    if _CODE_WORD.fullmatch(token):
        return "prose"
    if token.isspace() or token in "()[]":
        return "either"
    if token in ",;:" or (token == "." and last) or token in "’\"!?":
        return "prose"
    if token == "'" and k and len(tokens[k - 1]) > 1 and _WORD.fullmatch(tokens[k - 1]) and (
            tokens[k - 1].lower() not in _NAMES):
        return "prose"
    return "maths"


def _balance(run: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Split edge spaces and unbalanced brackets off a run of maths: (before, maths, after)."""
    before, after = [], []
    pairs = {")": "(", "]": "["}
    opens = {"(": ")", "[": "]"}
    changed = True
    while changed:
        changed = False
        while run and (run[-1].isspace() or (run[-1] in pairs and run.count(run[-1]) > run.count(
                pairs[run[-1]])) or (run[-1] in opens and run.count(run[-1]) > run.count(
                opens[run[-1]]))):
            after.insert(0, run.pop())
            changed = True
        while run and (run[0].isspace() or (run[0] in opens and run.count(run[0]) > run.count(
                opens[run[0]])) or (run[0] in pairs and run.count(run[0]) > run.count(
                pairs[run[0]]))):
            before.append(run.pop(0))
            changed = True
    return before, run, after


def _has_maths(run: list[str]) -> bool:
    """Whether a run has an operand (a letter, a number, ∂), not only signs."""
    return any(t[0].isalnum() or t[0] in _SUBSCRIPT_DIGITS or t[0] in "∂Σ" for t in run)


def segments(text: str) -> list[tuple[bool, str]]:
    """The sentence as (is maths, text) pieces."""
    tokens = _PROSE_TOKEN.findall(text)
    pieces: list[list] = []  # [is maths, tokens]
    pending: list[str] = []  # an opening bracket goes with what follows it
    for k, token in enumerate(tokens):
        kind = _kind(tokens, k)
        if kind == "either" and (token in "([" or (pending and token.isspace())):
            pending.append(token)
        elif kind == "either" and pieces:
            pieces[-1][1].append(token)
        elif pieces and (kind == "either" or pieces[-1][0] == (kind == "maths")):
            pieces[-1][1].extend([*pending, token])
            pending = []
        else:
            pieces.append([kind == "maths", [*pending, token]])
            pending = []
    if pending:
        pieces.append([False, pending])
    out: list[tuple[bool, str]] = []
    for is_maths, run in pieces:
        if not is_maths:
            out.append((False, "".join(run)))
            continue
        before, maths, after = _balance(list(run))
        out += [(False, "".join(before)), (_has_maths(maths), "".join(maths)),
                (False, "".join(after))]
    merged: list[tuple[bool, str]] = []
    for is_maths, piece in out:
        if piece and merged and not is_maths and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + piece)
        elif piece:
            merged.append((is_maths, piece))
    return merged


# A piece of maths as (MathML, LaTeX).
_SIGNS = {"-": ("−", "-"), "−": ("−", "-"), "·": ("⋅", r"\cdot "), "⊙": ("⊙", r"\odot "),
          "←": ("←", r"\leftarrow "), "≠": ("≠", r"\ne "), "≤": ("≤", r"\le "),
          "≥": ("≥", r"\ge "), "×": ("×", r"\times "), "..": ("…", r"\ldots "),
          "|": ("|", "|"), "=": ("=", "="), "+": ("+", "+"), "/": ("/", "/")}
_LATEX_GREEK = {v: k for k, v in _GREEK.items() if k not in ("epsilon", "phi")}


def _letter(ch: str) -> tuple[str, str]:
    if ch in ("ŷ", "Ŷ", "ŝ"):
        base = {"ŷ": "y", "Ŷ": "Y", "ŝ": "s"}[ch]
        return (f'<mover accent="true"><mi>{base}</mi><mo>^</mo></mover>', rf"\hat{{{base}}}")
    if ch == "Σ":
        return ('<mo largeop="true" movablelimits="false">∑</mo>', r"\sum")
    if ch in _LATEX_GREEK:
        return f"<mi>{ch}</mi>", "\\" + _LATEX_GREEK[ch] + " "
    return f"<mi>{ch}</mi>", ch


class _Prose:
    """Reads a run of Unicode maths (``Z₁ = X W₁ + b₁``, ``e^(z_i)/S``) into MathML and LaTeX."""

    def __init__(self, text: str):
        self.tokens = [t for t in _PROSE_TOKEN.findall(text) if not t.isspace()]
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i] if self.i < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        self.i += 1
        return token

    def run(self, stop: str = "") -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        while self.peek() and self.peek() != stop:
            items.extend(self.term())
        return items

    def term(self) -> list[tuple[str, str]]:
        """A primary with its scripts: (the items before the last, the last with scripts)."""
        items = self.primary()
        if not items:
            return items
        base = items.pop()
        big = base[0].startswith("<mo largeop")
        return [*items, self.scripts(base, big)]

    def group(self) -> tuple[str, str]:
        """A script: ``(...)`` without its parentheses, or one token (a sign with it)."""
        if self.peek() == "(":
            self.take()
            inner = self.run(stop=")")
            self.take()
        else:
            inner = []
            if self.peek() in ("-", "−"):
                inner.append(_sign(self.take()))
            inner.extend(self.primary())
        return _join(inner)

    def scripts(self, base, big):
        sub = sup = None
        while True:
            token = self.peek()
            if token == "_":
                self.take()
                sub = self.group()
            elif token and token[0] in _SUBSCRIPT_DIGITS:
                self.take()
                digits = "".join(str(_SUBSCRIPT_DIGITS.index(c)) for c in token)
                sub = (f"<mn>{digits}</mn>", digits)
            elif token == "^":
                self.take()
                sup = self.group()
            elif token in _SUPERSCRIPTS:
                self.take()
                mark = _SUPERSCRIPTS[token]
                tex = {"⊤": r"\top", "′": r"\prime"}.get(mark, mark)
                sup = (f"<mo>{mark}</mo>" if not mark[-1].isdigit() else f"<mn>{mark}</mn>", tex)
            else:
                break
        return _scripted(base, sub, sup, big)

    def primary(self) -> list[tuple[str, str]]:
        token = self.take()
        if not token:  # a script with nothing after it: "x_"
            return []
        if _WORD.fullmatch(token):
            if token.lower() in _NAMES:
                if len(token) == 1:
                    return [_letter(token)]
                return [(f"<mi>{escape(token)}</mi>", rf"\operatorname{{{token}}}")]
            return [_letter(ch) for ch in token]
        if token[0].isdigit():
            return [(f"<mn>{token}</mn>", token)]
        if token == "∂":
            return [('<mi mathvariant="normal">∂</mi>', r"\partial ")]
        if token in ("(", "["):
            close = ")" if token == "(" else "]"
            inner = self.run(stop=close)
            end = self.take()
            return [(f"<mo>{token}</mo>", token), *inner,
                    *([(f"<mo>{end}</mo>", end)] if end else [])]
        return [_sign(token)]


def _sign(token: str) -> tuple[str, str]:
    shown, tex = _SIGNS.get(token, (token, token))
    return f"<mo>{escape(shown)}</mo>", tex


def _join(items: list[tuple[str, str]]) -> tuple[str, str]:
    if not items:
        return "<mrow></mrow>", "{}"
    return _row([m for m, _ in items]), "".join(t for _, t in items)


def _scripted(base, sub, sup, big):
    if sub is None and sup is None:
        return base
    tags = ("munder", "mover", "munderover") if big else ("msub", "msup", "msubsup")
    body = base[0] + (sub[0] if sub else "") + (sup[0] if sup else "")
    tag = tags[2] if sub and sup else tags[0] if sub else tags[1]
    tex = "{" + base[1].strip() + "}" + (f"_{{{sub[1]}}}" if sub else "") + (
        f"^{{{sup[1]}}}" if sup else "")
    return f"<{tag}>{body}</{tag}>", tex


def prose_maths(text: str) -> tuple[str, str]:
    """A run of Unicode maths as (MathML body, LaTeX)."""
    return _join(_Prose(text).run())


def prose_html(text: str) -> str:
    """A sentence as HTML: its words escaped, its maths as inline ``<math>`` elements."""
    out = []
    for is_maths, piece in segments(text):
        out.append(math_element(prose_maths(piece)[0], piece) if is_maths else escape(piece))
    return "".join(out)


_LATEX_PROSE = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "^": r"\^{}", "$": r"\$",
                "’": "'", "—": "---", "–": "--", "√": r"$\surd$", "∞": r"$\infty$",
                "×": r"$\times$", "⌊": r"$\lfloor$", "⌋": r"$\rfloor$", "ᵖ": r"$^p$",
                "ᵈ": r"$^d$", **{chr(0x2080 + k): f"$_{k}$" for k in range(10)}}
# What is left of Unicode in a piece of maths, as LaTeX.
_LATEX_MATHS = {"√": r"\surd ", "∞": r"\infty ", "⌊": r"\lfloor ", "⌋": r"\rfloor ",
                "ᵖ": "^p", "ᵈ": "^d", **{chr(0x2080 + k): f"_{k}" for k in range(10)}}
_HATTED = re.compile("(\\w)\u0302")  # a letter with a combining circumflex: X̂


def prose_latex(text: str) -> str:
    """A sentence as LaTeX: its words as text, its maths as inline ``$...$``."""
    out = []
    for is_maths, piece in segments(text):
        if is_maths:
            tex = _HATTED.sub(lambda m: f"\\hat{{{m.group(1)}}}", prose_maths(piece)[1].strip())
            out.append("$" + "".join(_LATEX_MATHS.get(ch, ch) for ch in tex) + "$")
        else:
            piece = _HATTED.sub(lambda m: f"${{\\hat {m.group(1)}}}$", piece)
            out.append("".join(_LATEX_PROSE.get(ch, ch) for ch in piece))
    # A hat split from its letter at a change from words to maths ("dX̂ = ...").
    return re.sub("(\\w)\\$\u0302", lambda m: f"$\\hat{{{m.group(1)}}}", "".join(out))
