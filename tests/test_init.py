"""mg.init: seeded, reproducible initialisers with the documented fans and variances."""
import math

import numpy as np
import pytest

import minigraph as mg


def test_seed_makes_draws_reproducible_and_seeds_differ():
    mg.init.seed(3)
    a = mg.init.he((16, 8, 3, 3))
    b = mg.init.glorot((20, 30))
    mg.init.seed(3)
    np.testing.assert_array_equal(a, mg.init.he((16, 8, 3, 3)))
    np.testing.assert_array_equal(b, mg.init.glorot((20, 30)))
    mg.init.seed(4)
    assert not np.array_equal(a, mg.init.he((16, 8, 3, 3)))


def test_rng_argument_int_seed_and_generator():
    np.testing.assert_array_equal(mg.init.normal((5, 5), rng=7), mg.init.normal((5, 5), rng=7))
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    np.testing.assert_array_equal(mg.init.uniform((4,), rng=g1), mg.init.uniform((4,), rng=g2))
    with pytest.raises(TypeError, match="rng"):
        mg.init.normal((2,), rng="seven")


@pytest.mark.parametrize("shape, fans", [
    ((64, 3, 7, 7), (3 * 49, 64 * 49)),     # conv (F, C, KH, KW)
    ((1024, 10), (1024, 10)),               # dense (in, out)
    ((32, 16, 1, 1), (16, 32)),             # 1x1 conv
    ((12,), (12, 12)),                      # bias
])
def test_fans(shape, fans):
    assert mg.init.fans(shape) == fans


def test_he_normal_and_uniform_variance_is_two_over_fan_in():
    shape = (256, 64, 3, 3)  # fan_in 576, 147456 draws
    for dist in ("normal", "uniform"):
        w = mg.init.he(shape, rng=0, distribution=dist)
        assert w.dtype == np.float32 and w.shape == shape
        assert abs(w.var() / (2 / 576) - 1) < 0.02
        assert abs(w.mean()) < 0.01 * math.sqrt(2 / 576) * 10
    u = mg.init.he(shape, rng=0, distribution="uniform")
    assert np.abs(u).max() <= math.sqrt(6 / 576)


def test_glorot_uniform_limit_and_variance():
    w = mg.init.glorot((300, 500), rng=1)
    limit = math.sqrt(6 / 800)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert abs(w.var() / (2 / 800) - 1) < 0.02
    n = mg.init.glorot((300, 500), rng=1, distribution="normal")
    assert abs(n.std() / math.sqrt(2 / 800) - 1) < 0.02


def test_zeros_constant_normal_uniform_and_dtype():
    assert np.array_equal(mg.init.zeros(3), np.zeros(3, np.float32))
    assert mg.init.zeros(3).dtype == np.float32
    np.testing.assert_array_equal(mg.init.constant((2, 2), 0.5, dtype="float64"), np.full((2, 2), 0.5))
    u = mg.init.uniform((1000,), -2.0, 3.0, rng=0)
    assert u.min() >= -2.0 and u.max() < 3.0
    n = mg.init.normal((20000,), std=0.5, mean=1.0, rng=0)
    assert abs(n.mean() - 1.0) < 0.02 and abs(n.std() - 0.5) < 0.02


def test_bad_arguments():
    with pytest.raises(ValueError, match="distribution"):
        mg.init.he((3, 3), distribution="cauchy")
    with pytest.raises(ValueError, match="fully known shape"):
        mg.init.he((None, 3))
