"""The command line shows library messages in its own words: the library names its parameters
(``activation='tahn'``, ``mean=True``), the command line the options a user types
(``--activation 'tahn'``, ``--mean``), read from each command's own parser."""

from __future__ import annotations

import pytest

import chainrule.derivation
import chainrule.gradient_check.symbolic
from chainrule.cli import build_parser, flags_for_parameters, main


@pytest.fixture(scope="module")
def commands():
    return build_parser().commands


@pytest.mark.parametrize(("command", "message", "shown"), [
    ("derive", "Unknown activation='tahn'; known: sigmoid, tanh.",
     "Unknown --activation 'tahn'; known: sigmoid, tanh."),
    ("derive", "give activation= and loss=, or an expression",
     "give --activation and --loss, or an expression"),
    ("derive", "wrt=W1 is not a variable of the formula.",
     "--wrt W1 is not a variable of the formula."),
    ("check", "mean=True and sum=True contradict each other",
     "--mean and --sum contradict each other"),
    ("check", "with network=None the formula is for one layer", "with no --network the formula "
     "is for one layer"),
    ("check", 'loss="bce" needs yhat in (0, 1)', '--loss "bce" needs yhat in (0, 1)'),
    ("train", "batch_size=0 must be at least 1", "--batch-size 0 must be at least 1"),
    ("train", "the clip_norm=-1.0 must be positive", "the --clip-norm -1.0 must be positive"),
])
def test_a_parameter_that_is_an_option_becomes_its_flag(commands, command, message, shown):
    assert flags_for_parameters(message, commands[command]) == shown


@pytest.mark.parametrize(("command", "message"), [
    # not an option of this command: check has no --weights, derive no --sum
    ("check", "weights=True needs an activation"),
    ("derive", "sum=True applies to matrix formulas"),
    # the positional argument is no option, and keywords of a Python call stay Python
    ("derive", "got expression='x', an expression"),
    ("derive", "The option needs a loss (derive(loss='mse', mean=True))."),
    ("check", "write sum(A, axis=0) for the column sums"),
    # a switch with a value it cannot take on the command line
    ("derive", "weights=2 is not a yes/no value"),
    # already in the command line's words, and names that only end like an option
    ("check", "--loss bce --mean"),
    ("derive", "a_loss=1 and loss_=2 and x.loss=3"),
])
def test_other_words_are_left_as_they_are(commands, command, message):
    assert flags_for_parameters(message, commands[command]) == message


def test_a_library_error_is_printed_with_the_commands_flags(monkeypatch, capsys):
    def derive(*args, **kwargs):
        raise ValueError("activation='tahn' is not an activation; did you mean "
                         "activation='tanh'? With layer=True give loss= too.")

    monkeypatch.setattr(chainrule.derivation, "derive", derive)
    assert main(["derive", "--activation", "tahn", "--loss", "bce"]) == 2
    err = capsys.readouterr().err
    assert err == ("chainrule derive: error: --activation 'tahn' is not an activation; did you "
                   "mean --activation 'tanh'? With --layer give --loss too.\n")


def test_the_check_command_translates_with_its_own_options(monkeypatch, capsys):
    def check_formula(*args, **kwargs):
        raise ValueError("with activation='tanh' the formula is dE/dz; got wrt='yhat'. Leave "
                         "out wrt=, or give function= instead of loss=.")

    monkeypatch.setattr(chainrule.gradient_check.symbolic, "check_formula", check_formula)
    assert main(["check", "--activation", "tanh", "--wrt", "yhat", "--loss", "bce", "y"]) == 2
    assert capsys.readouterr().err == (
        "chainrule check: error: with --activation 'tanh' the formula is dE/dz; got --wrt "
        "'yhat'. Leave out --wrt, or give --function instead of --loss.\n")


def test_messages_of_the_panels_come_out_with_flags(capsys):
    # written with parameters in chainrule._panels, shared with the web page
    assert main(["check", "--loss", "bce", "--sum", "yhat - y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule check: error: --sum applies to matrix formulas (--layer or "
                          "--network)")
    assert "=" not in err
