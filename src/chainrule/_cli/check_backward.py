"""`chainrule check-backward`: check the backward pass of the user's own file.

    chainrule check-backward my_layer.py:MyFunction --shapes 4x3,3x5
    chainrule check-backward layers.py:affine_forward,affine_backward --layer dense

imports the named file (the user's code, run on purpose), checks the backward with
:func:`chainrule.gradient_check.check_backward`, prints the report (or JSON with
``--format json``) and exits 0 when every input passes, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

# Library messages name parameters; the command line speaks of its flags (longest first).
_PARAMETER_FLAGS = {"style='cache'": "--style cache", "max_elements=": "--max-elements",
                    "shapes=": "--shapes", "layer=": "--layer", "dtype=": "--dtype",
                    "style=": "--style"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check-backward",
        help="check a hand-written backward pass (NumPy, torch.autograd.Function, "
             "jax.custom_vjp) and name the mistake",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Check a hand-written backward pass input by input against float64 central\n"
            "differences of its forward, and say where it differs and which mistake explains\n"
            "it. This IMPORTS AND RUNS THE GIVEN PYTHON FILE: check only code you trust.\n"
            "Exit status 0 when every input's gradient passes, 1 otherwise, 2 on bad usage."
        ),
        epilog=(
            "TARGET is FILE:NAME (a torch.autograd.Function subclass, a torch module or a\n"
            "jax.custom_vjp function) or FILE:FORWARD,BACKWARD (NumPy or JAX functions:\n"
            "backward(dout, *inputs), or the course style forward -> (out, cache) and\n"
            "backward(dout, cache)).\n"
            "examples:\n"
            "  chainrule check-backward my_layer.py:MyFunction --shapes 4x3,3x5\n"
            "  chainrule check-backward layers.py:affine_forward,affine_backward --layer dense\n"
            "  chainrule check-backward ops.py:Square --shapes 8 --dtype float32 --format json"
        ),
    )
    parser.add_argument("target", metavar="TARGET", help="FILE:NAME or FILE:FORWARD,BACKWARD")
    parser.add_argument("--shapes", metavar="SHAPES",
                        help="the input shapes, comma-separated, sizes joined by x: 4x3,3x5 "
                             "(a scalar input: 1x1 or 1; default: the --layer's)")
    parser.add_argument("--layer", metavar="NAME",
                        help="try the known mistakes of this layer: dense, softmax, or an "
                             "activation (relu, tanh, sigmoid, ...)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default=None,
                        help="the dtype of the drawn inputs (default: float64)")
    parser.add_argument("--style", choices=("auto", "inputs", "cache"), default="auto",
                        help="NumPy pairs: backward(dout, *inputs) or backward(dout, cache)")
    parser.add_argument("--seed", type=int, default=0, help="seeds inputs and cotangents")
    parser.add_argument("--max-elements", type=int, default=1024, metavar="N",
                        help="larger inputs are checked along random directions and on a "
                             "sample (default: %(default)s)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(command="check_backward")


def _usage(message: str) -> int:
    print(f"chainrule check-backward: error: {message}", file=sys.stderr)
    return 2


def _shapes(text: str) -> list[tuple[int, ...]]:
    shapes = []
    for part in text.split(","):
        sizes = part.strip().lower().split("x")
        if not all(s.strip().isdigit() for s in sizes):
            raise ValueError(f"--shapes takes sizes joined by x and shapes joined by commas, "
                             f"such as 4x3,3x5; got {text!r}")
        shapes.append(tuple(int(s) for s in sizes))
    return shapes


def _load(target: str):
    """The objects TARGET names, from the user's file (imported, so its code runs)."""
    path_text, sep, names = target.rpartition(":")
    if not sep or not path_text or not names:
        raise ValueError(f"TARGET must be FILE:NAME or FILE:FORWARD,BACKWARD; got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"{path_text}: no such file; give the path of the Python file that "
                         "defines the backward pass")
    spec = importlib.util.spec_from_file_location(f"_chainrule_user_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    found = []
    for name in names.split(","):
        if not hasattr(module, name.strip()):
            defined = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
            raise ValueError(f"{path_text} defines no {name.strip()!r}; it defines "
                             f"{', '.join(defined) or 'nothing public'}")
        found.append(getattr(module, name.strip()))
    if len(found) > 2:
        raise ValueError(f"TARGET names {len(found)} objects; name one (FILE:NAME) or a forward "
                         "and a backward (FILE:FORWARD,BACKWARD)")
    return found


def fill(report: str, width: int) -> str:
    """The report with each line wrapped to ``width``, continuations indented under it."""
    import textwrap

    lines = []
    for line in report.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        lines.append(textwrap.fill(line, width, subsequent_indent=indent + "  ",
                                   break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines)


def _flags(message: str) -> str:
    for parameter, flag in _PARAMETER_FLAGS.items():
        message = message.replace(parameter, flag)
    return message


def run(args) -> int:
    from chainrule.gradient_check import check_backward

    if args.shapes is None and args.layer is None:
        return _usage("give the input shapes, such as --shapes 4x3,3x5 (or --layer NAME for "
                      "that layer's shapes)")
    if args.max_elements < 1:
        return _usage(f"--max-elements must be at least 1; got {args.max_elements}")
    try:
        shapes = _shapes(args.shapes) if args.shapes else None
        objects = _load(args.target)
    except ValueError as exc:
        return _usage(str(exc))
    except SyntaxError as exc:
        return _usage(f"{args.target}: the file is not valid Python (line {exc.lineno}: "
                      f"{exc.msg}); fix it and run again")
    except Exception as exc:
        print(f"chainrule check-backward: error: importing {args.target.rpartition(':')[0]} "
              f"raised {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        report = check_backward(*objects, shapes=shapes, layer=args.layer, dtype=args.dtype,
                                seed=args.seed, style=args.style,
                                max_elements=args.max_elements)
    except ValueError as exc:
        text = " ".join(_flags(str(exc)).split())
        if text.startswith("--layer") or "shapes[" in str(exc):
            return _usage(text)
        print(f"chainrule check-backward: error: {text}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"chainrule check-backward: error: the forward or backward raised "
              f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(report.to_json())
    else:
        from chainrule._cli import report_width

        print(fill(_flags(str(report)), report_width()))
    return 0 if report.correct else 1
