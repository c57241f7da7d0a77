"""gradcheck itself: passes on right gradients, reports the worst element of wrong ones."""
import dataclasses
from typing import ClassVar

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops
from minigraph.op import Op, apply
from minigraph.testing import GradcheckError


@dataclasses.dataclass(frozen=True)
class WrongCube(Op):
    """x**3 with a gradient that is wrong on purpose (2x**2 instead of 3x**2)."""

    kind: ClassVar[str] = "wrong_cube"

    def infer(self, x):
        return x

    def forward(self, xp, x):
        return x ** 3

    def gradient(self, node, g):
        x = node.inputs[0]
        return [g * x * x * 2.0]


@dataclasses.dataclass(frozen=True)
class Twice(Op):
    """2a, with a wrong gradient (3g)."""

    kind: ClassVar[str] = "twice"

    def infer(self, a):
        return a

    def forward(self, xp, a):
        return 2 * a

    def gradient(self, node, g):
        return [g * 3.0]


@dataclasses.dataclass(frozen=True)
class WrongSecondOrder(Op):
    """x**2 whose first gradient is right but whose gradient's gradient is not."""

    kind: ClassVar[str] = "wrong_second"

    def infer(self, x):
        return x

    def forward(self, xp, x):
        return x * x

    def gradient(self, node, g):
        return [apply(Twice(), [g * node.inputs[0]])]


@dataclasses.dataclass(frozen=True)
class NanGradient(Op):
    """x with a gradient that is NaN: finite forward values, so only the comparison can catch it."""

    kind: ClassVar[str] = "nan_gradient"

    def infer(self, x):
        return x

    def forward(self, xp, x):
        return x + 0.0

    def gradient(self, node, g):
        return [g * float("nan")]


@pytest.mark.parametrize("mode", ["full", "random"])
def test_a_nan_gradient_fails_the_check(mode):
    """NaN compared as "no excess", so a NaN gradient passed with max_abs_error [nan]."""
    with pytest.raises(GradcheckError, match="symbolic nan"):
        mg.testing.gradcheck(lambda x: apply(NanGradient(), [x]), [np.linspace(1, 2, 4)], mode=mode, order=1)


def test_passes_on_correct_gradients():
    rng = np.random.default_rng(0)
    report = mg.testing.gradcheck(lambda a, b: ops.matmul(a, ops.exp(b)), [rng.random((2, 3)), rng.random((3, 2))])
    assert len(report.max_abs_error) == 4 and max(report.max_abs_error) < 1e-6


def test_reports_worst_element_of_a_wrong_gradient():
    x0 = np.array([0.01, 5.0, 0.01])  # the error 2x**2 * weight is largest at x=5
    with pytest.raises(GradcheckError, match=r"order-1 gradient of input 0 .* at element \(1,\)"):
        mg.testing.gradcheck(lambda x: apply(WrongCube(), [x]), [x0], order=1)


def test_random_direction_mode_catches_wrong_gradient():
    with pytest.raises(GradcheckError, match="random direction"):
        mg.testing.gradcheck(lambda x: apply(WrongCube(), [x]), [np.linspace(1, 2, 50)], mode="random", order=1)


def test_second_order_is_checked():
    x0 = np.array([0.7, -1.3])
    mg.testing.gradcheck(lambda x: apply(WrongSecondOrder(), [x]), [x0], order=1)  # first order is fine
    with pytest.raises(GradcheckError, match="order-2"):
        mg.testing.gradcheck(lambda x: apply(WrongSecondOrder(), [x]), [x0], order=2)


def test_non_float_inputs_are_fed_not_checked():
    logits = np.random.default_rng(0).standard_normal((3, 4))
    report = mg.testing.gradcheck(ops.softmax_cross_entropy, [logits, np.array([0, 3, 1])])
    assert len(report.max_abs_error) == 2


def test_evaluate_builds_feeds_and_runs():
    node, value = mg.testing.evaluate(lambda a, b: a @ b, np.ones((2, 3)), np.ones((3, 1)), dtype="float32",
                                      shapes=[(None, 3), (3, 1)])
    assert node.shape == (None, 1) and node.dtype == np.float32
    assert value.dtype == np.float32 and np.array_equal(value, np.full((2, 1), 3.0))
