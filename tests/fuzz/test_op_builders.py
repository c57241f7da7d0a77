"""Fuzzed general op builders: matmul, elementwise ops with broadcasting, reductions, shape
ops, softmax and its cross-entropy, one-hot, slices and pads along an axis.

As in test_cnn_op_builders: random shapes with some dimensions hidden as None, arguments in
and out of range, values fed with the hidden sizes (now and then others). A case ends in a
result equal to the NumPy expression written here (float64), or in a minigraph error naming
the node or the op; anything else is an escape. Only the batch axis of inputs that share it
is hidden together (a batch fed differently to two placeholders is the session's feed rule,
see the xfail cases in test_feeds.py).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigraph as mg
from minigraph import ops

from fuzzing import budget, expect_minigraph_error, record

AREA = "op builders"
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(-1) is NaN in both: a correct result


class Invalid(Exception):
    """NumPy (the reference) refuses these shapes or arguments."""


def numpy_ref(fn):
    def ref(*arrays):
        try:
            with np.errstate(all="ignore"):
                return fn(*[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
        except (ValueError, IndexError, TypeError, np.exceptions.AxisError) as exc:
            raise Invalid(f"{type(exc).__name__}: {exc}")
    return ref


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def cross_entropy(logits, labels):
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise ValueError("shapes, or an empty batch")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError("labels out of range")
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels].mean()


def one_hot(labels, depth):
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= depth)):
        raise ValueError("labels out of range")
    return (labels[:, None] == np.arange(depth)[None, :]).astype(np.float32)


SIZE = st.sampled_from([1, 2, 3, 4, 5, 1, 2, 3, 0])
AXIS = st.sampled_from([0, 1, -1, 2, -2, None, (0, 1), (1, 1), 3, -4])

# name: (number of inputs, builder(inputs, arg), reference(arrays, arg), argument strategy)
OPS = {
    "matmul": (2, lambda a, b, _: ops.matmul(a, b, name="op"), lambda a, b, _: a @ b, st.none()),
    "add": (2, lambda a, b, _: ops.add(a, b, name="op"), lambda a, b, _: a + b, st.none()),
    "mul": (2, lambda a, b, _: ops.mul(a, b, name="op"), lambda a, b, _: a * b, st.none()),
    "div": (2, lambda a, b, _: ops.div(a, b, name="op"), lambda a, b, _: a / b, st.none()),
    "relu": (1, lambda a, _: ops.relu(a, name="op"), lambda a, _: np.maximum(a, 0), st.none()),
    "exp": (1, lambda a, _: ops.exp(a, name="op"), lambda a, _: np.exp(a), st.none()),
    "log": (1, lambda a, _: ops.log(a, name="op"), lambda a, _: np.log(a), st.none()),
    "sqrt": (1, lambda a, _: ops.sqrt(a, name="op"), lambda a, _: np.sqrt(a), st.none()),
    "sum": (1, lambda a, ax: ops.sum(a, axis=ax[0], keepdims=ax[1], name="op"),
            lambda a, ax: a.sum(axis=ax[0], keepdims=ax[1]), st.tuples(AXIS, st.booleans())),
    "mean": (1, lambda a, ax: ops.mean(a, axis=ax[0], keepdims=ax[1], name="op"),
             lambda a, ax: a.mean(axis=ax[0], keepdims=ax[1]), st.tuples(AXIS, st.booleans())),
    "reshape": (1, lambda a, s: ops.reshape(a, s, name="op"), lambda a, s: a.reshape(s),
                st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6, 0, -2]), min_size=0, max_size=3).map(tuple)),
    "flatten": (1, lambda a, _: ops.flatten(a, name="op"),
                lambda a, _: a.reshape(a.shape[0], int(np.prod(a.shape[1:]))), st.none()),
    "transpose": (1, lambda a, p: ops.transpose(a, p, name="op"), lambda a, p: a.transpose(p),
                  st.one_of(st.none(), st.permutations([0, 1, 2]).map(tuple), st.just((0, 0, 1)))),
    "softmax": (1, lambda a, ax: ops.softmax(a, axis=ax, name="op"), lambda a, ax: softmax(a, ax),
                st.sampled_from([-1, 0, 1, 2, 3])),
    "log_softmax": (1, lambda a, ax: ops.log_softmax(a, axis=ax, name="op"),
                    lambda a, ax: np.log(softmax(a, ax)), st.sampled_from([-1, 0, 1])),
    "slice_axis": (1, lambda a, r: ops.slice_axis(a, r[0], r[1], axis=r[2], name="op"),
                   lambda a, r: np.take(a, range(r[0], r[1]), axis=r[2]) if 0 <= r[0] <= r[1] <= a.shape[r[2]]
                   else np.take(a, [10 ** 6], axis=0),
                   st.tuples(st.integers(-1, 4), st.integers(-1, 5), st.integers(-3, 2))),
    "pad_axis": (1, lambda a, r: ops.pad_axis(a, r[0], r[1], axis=r[2], name="op"),
                 lambda a, r: np.pad(a, [(r[0], r[1]) if i == r[2] % a.ndim else (0, 0) for i in range(a.ndim)])
                 if min(r[:2]) >= 0 else np.take(a, [10 ** 6], axis=0),
                 st.tuples(st.integers(-1, 3), st.integers(-1, 3), st.integers(-3, 2))),
}


@budget(60)
@given(data=st.data(), name=st.sampled_from(sorted(OPS)), rank=st.integers(1, 3),
       dtype=st.sampled_from(["float32"] * 6 + ["float64"] * 2 + ["int32"]))
def test_general_ops(data, name, rank, dtype):
    arity, build, reference, arg_strategy = OPS[name]
    arg = data.draw(arg_strategy)
    batch = data.draw(SIZE)
    first = (batch,) + tuple(data.draw(SIZE) for _ in range(rank - 1))
    shapes = [first]
    if arity == 2:  # the second operand: matmul's (k, m), else a broadcastable (or not) shape
        if name == "matmul":
            shapes = [first[:2] + (3,) * (2 - len(first[:2])), None]
            shapes[1] = (shapes[0][1] if data.draw(st.integers(0, 3)) else data.draw(SIZE), data.draw(SIZE))
        else:
            shapes.append(tuple(d if data.draw(st.integers(0, 3)) else data.draw(st.sampled_from([1, d, 2]))
                                for d in first[data.draw(st.integers(0, rank - 1)):]))
    hidden_batch = data.draw(st.booleans())
    if hidden_batch and arity == 2 and len(shapes[1]) == len(first):  # a shared batch is fed alike
        shapes[1] = (first[0],) + shapes[1][1:]
    hide_inner = name == "matmul" and data.draw(st.booleans())
    statics = []
    for i, s in enumerate(shapes):
        static = list(s)
        if hidden_batch and len(s) == len(first):
            static[0] = None
        if hide_inner:
            static[1 - i] = None
        statics.append(tuple(static))
    with mg.Graph() as g:
        phs = [mg.placeholder(s, dtype, name=f"in{i}") for i, s in enumerate(statics)]
        try:
            y = build(*phs, arg)
        except Exception as exc:  # noqa: BLE001 - the oracle judges every exception
            expect_minigraph_error(AREA, exc, "'op'", name)
            return
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    arrays = [(rng.standard_normal(s) * 2).astype(dtype) for s in shapes]
    if hide_inner and data.draw(st.integers(0, 3)) == 0:  # now and then an inner size that does not fit
        arrays[1] = rng.standard_normal((shapes[1][0] + 1, shapes[1][1])).astype(dtype)
    run_and_compare(g, y, phs, arrays, lambda *a: numpy_ref(lambda *b: reference(*b, arg))(*a), (name, arg))


@budget(40)
@given(data=st.data(), n=SIZE, k=SIZE, depth=st.sampled_from([3, 1, 0, -1]), hidden=st.booleans(),
       low=st.sampled_from([0, 0, 0, -1]), high=st.sampled_from([3, 3, 4, 9]),
       label_dtype=st.sampled_from(["int64", "int32", "uint8", "float32"]), which=st.sampled_from(["sce", "one_hot"]))
def test_labels(data, n, k, depth, hidden, low, high, label_dtype, which):
    """softmax_cross_entropy and one_hot: labels in and out of range, empty batches, bad depths."""
    with mg.Graph() as g:
        labels = mg.placeholder((None if hidden else n,), label_dtype, name="labels")
        try:
            if which == "sce":
                logits = mg.placeholder((None if hidden else n, k), name="logits")
                y = ops.softmax_cross_entropy(logits, labels, name="op")
            else:
                y = ops.one_hot(labels, depth, name="op")
        except Exception as exc:  # noqa: BLE001
            expect_minigraph_error(AREA, exc, "'op'", which)
            return
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    lab = rng.integers(low, max(low + 1, min(high, k if which == "sce" else depth)), size=n)
    if label_dtype == "uint8":
        lab = np.abs(lab)
    lab = lab.astype(label_dtype)
    if which == "sce":
        if n == 0:
            return  # an empty batch's mean: the session's rule (xfail in test_feeds.py)
        arrays, phs = [rng.standard_normal((n, k)).astype("float32"), lab], [logits, labels]
        run_and_compare(g, y, phs, arrays, numpy_ref(cross_entropy), which)
    else:
        run_and_compare(g, y, [labels], [lab], numpy_ref(lambda a: one_hot(a, depth)), (which, depth))


def run_and_compare(g, y, phs, arrays, reference, case):
    try:
        out = mg.Session(g).run(y, dict(zip(phs, arrays)))
    except Exception as exc:  # noqa: BLE001
        expect_minigraph_error(AREA, exc, "'op'", *(repr(p.name) for p in phs))
        return
    try:
        ref = np.asarray(reference(*arrays))
    except Invalid as why:
        raise AssertionError(f"escape: {case}: a result {out.shape} where NumPy refuses ({why}): "
                             f"{[a.shape for a in arrays]}")
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert len(y.shape) == out.ndim and all(d is None or d == s for d, s in zip(y.shape, out.shape)), \
        (y.shape, out.shape)
    assert out.dtype == y.dtype
    tol = 1e-4 if out.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    record(AREA, "result")
