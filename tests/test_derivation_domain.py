"""Singular sets of the derivatives: periodic corners are described, never enumerated."""

from __future__ import annotations

import signal

import pytest
import sympy

from chainrule.derivation import derive
from chainrule.derivation.domain import K, finite_description
from chainrule.derivation.symbols import x


@pytest.fixture
def deadline():
    """Fail (instead of hanging) if a derivation runs for more than 120 s."""
    def stop(signum, frame):
        raise TimeoutError("the derivation did not finish")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("formula,family,left,right", [
    ("abs(sin(x))", sympy.pi * K, -1, 1),
    ("max(0, cos(x))", sympy.pi / 2 + sympy.pi * K, -1, 0),
    ("relu(sin(x))", sympy.pi * K, 0, 1),
])
def test_periodic_corners_are_one_family(deadline, formula, family, left, right):
    d = derive(formula)
    corners = [s for s in d.singularities if s.kind == "corner"]
    assert len(corners) == 1
    assert sympy.simplify(corners[0].value - family) == 0
    assert "(k any integer)" in d.to_text()
    assert f"the derivative is {left} on the left and {right} on the right" in d.to_text()


def test_finite_description_merges_the_halves_of_a_period():
    sol = sympy.solveset(sympy.sin(x), x, sympy.S.Reals)
    assert finite_description(sol) == ([], [(0, sympy.pi)])
    sol = sympy.solveset(sympy.sin(2 * x) - 1, x, sympy.S.Reals)
    points, families = finite_description(sol)
    assert points == [] and families == [(sympy.pi / 4, sympy.pi)]
    assert finite_description(sympy.FiniteSet(0, 1)) == ([0, 1], [])


def test_a_single_corner_stays_a_point():
    d = derive("abs(x)")
    assert [s.value for s in d.singularities] == [0]
    assert "k any integer" not in d.to_text()
