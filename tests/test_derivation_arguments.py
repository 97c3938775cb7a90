"""derive's arguments: what each takes, and the message for a value it cannot take or a name it
does not know (the near miss named by difflib, then the names it knows)."""

import pytest

pytest.importorskip("sympy")

import chainrule
from chainrule import losses, nn
from chainrule.cli import main
from chainrule.derivation.parser import FormulaError


@pytest.mark.parametrize(("kwargs", "received"), [
    ({"activation": ["sigmoid"]}, r"got a list: \['sigmoid'\]"),
    ({"activation": ("relu", "sigmoid"), "loss": "bce"}, r"got a tuple"),
    ({"activation": 3}, r"got an int: 3"),
    ({"activation": {"sigmoid": 1}}, r"got a dict"),
])
def test_an_activation_that_is_not_a_name_says_what_was_expected(kwargs, received):
    with pytest.raises(TypeError, match=received) as info:
        chainrule.derive(**kwargs)
    message = str(info.value)
    assert "activation= takes one name" in message and "'sigmoid'" in message
    assert "Activation" in message and "unhashable" not in message


def test_a_list_of_activations_points_to_network():
    with pytest.raises(TypeError, match=r"network=\[\.\.\.\] with loss="):
        chainrule.derive(activation=["relu", "sigmoid"], loss="bce", layer=True)


@pytest.mark.parametrize("loss", [{"name": "bce"}, ["bce"], 1.5])
def test_a_loss_that_is_not_a_name_says_what_was_expected(loss):
    with pytest.raises(TypeError, match=r"loss= takes one name, a string such as 'bce' or a "
                                        r"Loss") as info:
        chainrule.derive(loss=loss)
    assert type(loss).__name__ in str(info.value)


def test_activation_and_loss_objects_are_read_by_their_names():
    by_object = chainrule.derive(activation=nn.Sigmoid(), loss=losses.BinaryCrossEntropy())
    by_name = chainrule.derive(activation="sigmoid", loss="bce")
    assert by_object.result == by_name.result
    assert chainrule.derive(activation=nn.Tanh).result == chainrule.derive("tanh").result


@pytest.mark.parametrize(("text", "guess"), [("sigmod", "sigmoid"), ("tahn", "tanh"),
                                             ("rleu", "relu"), ("yht", "yhat")])
def test_an_unknown_name_says_what_it_probably_is(text, guess):
    with pytest.raises(FormulaError) as info:
        chainrule.derive(text)
    message = str(info.value)
    assert f"did you mean {guess}?" in message
    assert "The activations are identity, sigmoid, tanh" in message
    assert "the losses are mse, bce" in message and "the variables of a formula are x" in message


def test_an_unknown_name_far_from_every_name_lists_them_without_a_guess():
    with pytest.raises(FormulaError) as info:
        chainrule.derive("qqqq + x")
    assert "did you mean" not in str(info.value)
    assert "The activations are" in str(info.value)


@pytest.mark.parametrize(("kwargs", "guess"), [({"activation": "sigmod"}, "sigmoid"),
                                               ({"loss": "bcee"}, "bce")])
def test_an_unknown_activation_or_loss_argument_guesses_too(kwargs, guess):
    with pytest.raises(ValueError, match=f"; known: .*\\. Did you mean {guess}\\?$"):
        chainrule.derive(**kwargs)


@pytest.mark.parametrize("argv", [["derive", "sigmod"], ["plot", "tahn"]])
def test_the_command_line_prints_the_guess(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2  # an unknown name is bad usage
    err = capsys.readouterr().err
    assert "did you mean" in err and "The activations are" in err
    assert list(tmp_path.iterdir()) == []
