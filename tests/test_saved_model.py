"""mg.save_model / mg.load_model: every op kind of the library round-trips (attributes, names,
shapes, values, training steps), attribute encodings, and files that are corrupt, foreign,
tampered with or hold unknown ops."""
import dataclasses
import json
from typing import ClassVar

import numpy as np
import pytest

import minigraph as mg
from every_op import build_everything, library_kinds
from minigraph import ops
from minigraph.op import Op


def test_every_library_op_kind_round_trips(tmp_path):
    g, inputs, outputs, steps = build_everything()
    kinds = {n.kind for n in g.nodes}
    assert library_kinds() - kinds == set()            # the graph really holds every kind
    sess = mg.Session(g)
    rng = np.random.default_rng(1)
    feed = {inputs["x"]: rng.normal(size=(2, 3, 6, 6)), inputs["y"]: np.array([1, 7])}
    sess.run(steps["train"], {**feed, inputs["training"]: True})   # trained weights, moved averages
    path = mg.save_model(tmp_path / "m.npz", inputs, {**outputs, **steps}, sess, metadata={"classes": list("abc")})
    model = mg.load_model(path)
    assert model.metadata == {"classes": ["a", "b", "c"]}
    assert list(model.inputs) == ["x", "y", "training"] and list(model.outputs) == list(outputs) + list(steps)
    saved = g.ancestors(list(outputs.values()) + list(steps.values()))
    loaded = list(model.graph.nodes)
    assert [n.name for n in loaded] == [n.name for n in saved]
    for a, b in zip(saved, loaded):
        assert a.kind == b.kind and a.shape == b.shape and a.dtype == b.dtype
        assert [x.name for x in a.inputs] == [x.name for x in b.inputs]
        assert _same_fields(a.op, b.op, sess if a.kind == "variable" else None, a), a.name
    # the same values, from the trained weights, in a session that knows nothing of the original code
    want = sess.run(outputs, feed)
    got = model.run({"x": feed[inputs["x"]], "y": feed[inputs["y"]]}, list(outputs))
    for (name, value), other in zip(want.items(), got):
        np.testing.assert_allclose(other, value, rtol=1e-12, atol=1e-12, err_msg=name)
    # and the same training step (Adam's state starts empty in both: the file keeps no optimizer state)
    fresh = mg.Session(g)
    for v in sess.variables:
        fresh.set_value(v, sess.get_value(v))
    fresh.run(steps["train"], feed)
    model.run({"x": feed[inputs["x"]], "y": feed[inputs["y"]]}, "train")
    for v in sess.variables:
        np.testing.assert_allclose(model.session.get_value(model.graph.get(v.name)), fresh.get_value(v),
                                   rtol=1e-12, atol=1e-14, err_msg=v.name)


def _same_fields(a, b, sess, node):
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if sess is not None and f.name == "initial_value":
            va = sess.get_value(node)            # a variable starts from its saved (trained) value
        if isinstance(va, np.ndarray):
            if not (isinstance(vb, np.ndarray) and va.dtype == vb.dtype and np.array_equal(va, vb)):
                return False
        elif not (type(va) is type(vb) and va == vb):
            return False
    return True if not isinstance(a, mg.op.Variable) else a.trainable == b.trainable


def test_an_optimized_graph_with_fused_convs_round_trips(tmp_path):
    with mg.Graph():
        net = mg.models.mini_inception(rng=0)
    opt = mg.optimize(net.probs, feed=[net.x])
    fused = [n for n in opt.graph.nodes if n.kind in ("conv2d", "conv1x1") and n.op.activation == "relu"]
    assert fused
    sess = mg.Session(opt.graph)
    path = mg.save_model(tmp_path / "opt.npz", {"x": opt.fed[0]}, {"probs": opt.outputs[0]}, sess)
    model = mg.load_model(path)
    again = [n for n in model.graph.nodes if n.kind in ("conv2d", "conv1x1") and n.op.activation == "relu"]
    assert [n.op for n in again] == [n.op for n in fused] and [len(n.inputs) for n in again] == \
        [len(n.inputs) for n in fused]
    xv = np.random.default_rng(2).random((3, 1, 8, 8)).astype("float32")
    np.testing.assert_array_equal(model.run({"x": xv}, "probs"), sess.run(opt.outputs[0], {opt.fed[0]: xv}))


@dataclasses.dataclass(frozen=True)
class Fancy(Op):
    """An op with attributes of every kind a model file must keep."""

    kind: ClassVar[str] = "test_saved_model_fancy"
    pair: tuple
    nested: tuple
    scale: float
    text: str
    nothing: object
    flag: bool
    count: int
    dtype: np.dtype
    scalar: np.float32
    table: dict
    lookup: np.ndarray = dataclasses.field(repr=False, compare=False)

    def infer(self, x):
        return x

    def forward(self, xp, x):
        return x * self.scale + xp.asarray(self.lookup).sum()


def test_attribute_encodings_round_trip(tmp_path):
    lookup = np.array([[1.5, -0.5], [3.0, -2.0]], "float32")
    op = Fancy(pair=(1, 2), nested=((0, 1), (None, "SAME"), ()), scale=float("-inf"), text="a/b \"c\"",
               nothing=None, flag=True, count=-3, dtype=np.dtype("int16"), scalar=np.float32(0.1),
               table={"k": (1.0, float("nan"))}, lookup=lookup)
    with mg.Graph() as g:
        x = mg.placeholder((2,), "float32", name="x")
        y = mg.apply(op, [x], "fancy")
        z = mg.apply(Fancy(**{**{f.name: getattr(op, f.name) for f in dataclasses.fields(op)}, "scale": 2.0}),
                     [x], "fancy2")
    model = mg.load_model(mg.save_model(tmp_path / "f.npz", x, [y, z], mg.Session(g)))
    back = model.graph.get("fancy").op
    for f in dataclasses.fields(op):
        a, b = getattr(op, f.name), getattr(back, f.name)
        assert type(a) is type(b), f.name
        if f.name == "lookup":
            np.testing.assert_array_equal(a, b)
            assert b.dtype == np.float32
        elif f.name in ("scale", "table"):
            assert repr(a) == repr(b)                      # -inf and nan kept
        else:
            assert a == b, f.name
    np.testing.assert_array_equal(model.run({"x": np.ones(2, "float32")}, "fancy2"), [4.0, 4.0])  # 1 * 2 + 2


def _saved(tmp_path):
    with mg.Graph() as g:
        x = mg.placeholder((None, 4), name="x")
        w = mg.variable(np.arange(8, dtype="float32").reshape(4, 2), name="w")
        y = ops.softmax(ops.matmul(x, w), axis=1)
    sess = mg.Session(g)
    return mg.save_model(tmp_path / "m.npz", {"x": x}, {"probs": y}, sess), sess, x, y


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    doc = json.loads(str(arrays["meta/graph"]))
    change(doc, arrays)
    arrays["meta/graph"] = np.array(json.dumps(doc))
    np.savez(path, **arrays)


def _description(path):
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["meta/graph"]))


def test_files_that_are_not_good_models_are_clear_errors(tmp_path):
    path, sess, x, y = _saved(tmp_path)
    assert mg.load_model(path).run({"x": np.ones((1, 4), "float32")}, "probs").shape == (1, 2)
    with pytest.raises(mg.ArgumentError, match="Model.run: feed must be a dict of input name -> array, "
                                               "e.g. {'x': images}, got ndarray; the model's inputs: x"):
        mg.load_model(path).run(np.ones((1, 4), "float32"), "probs")
    with pytest.raises(mg.ModelFileError, match="no model file at"):
        mg.load_model(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(mg.ModelFileError, match="junk.npz: corrupt or unreadable model file"):
        mg.load_model(tmp_path / "junk.npz")
    mg.save(sess, tmp_path / "ckpt.npz")
    with pytest.raises(mg.CheckpointError, match=r"not a minigraph model file .*\(it is a checkpoint"):
        mg.load_model(tmp_path / "ckpt.npz")
    np.savez(tmp_path / "pickled.npz", **{"meta/format": np.array(["minigraph-model-1", None], dtype=object)})
    with pytest.raises(mg.ModelFileError, match="corrupt or unreadable"):   # no pickle is ever loaded
        mg.load_model(tmp_path / "pickled.npz")

    cases = [
        (lambda d, a: d["nodes"][2].update(kind="no_such_op"),
         r"node 'matmul' \(no_such_op\): no op of kind 'no_such_op' is registered.*import the module"),
        (lambda d, a: d["nodes"][2].update(shape=[None, 3]),
         r"node 'matmul' \(matmul\): the file says \(None, 3\) float32, its op gives \(None, 2\) float32"),
        (lambda d, a: a.update({"variables/w": np.zeros((3, 2), "float32")}),
         r"node 'w' \(variable\): the file says \(4, 2\) float32, its op gives \(3, 2\) float32"),
        (lambda d, a: (a.update({"variables/w": np.zeros((3, 2), "float32")}), d["nodes"][1].update(shape=[3, 2])),
         r"node 'matmul' \(matmul\): its shape rule rejects its inputs or attributes: ShapeError: inner dimensions differ"),
        (lambda d, a: d["nodes"][3]["attrs"].update(axis={"__set__": [1]}),
         r"node 'softmax' \(softmax\): its attributes do not make a Softmax \(unknown attribute encoding"),
        (lambda d, a: d["nodes"][3]["attrs"].update(axes=1),
         r"its attributes do not make a Softmax"),
        (lambda d, a: d["nodes"][2].update(inputs=[0, 3]), r"its inputs \[0, 3\] must be earlier nodes"),
        (lambda d, a: d.pop("nodes"), r"corrupt model description \(KeyError"),
        (lambda d, a: d["inputs"][0].__setitem__(1, 2), r"input 'x' is a matmul, not a placeholder"),
        (lambda d, a: d["outputs"][0].__setitem__(1, -1), r"corrupt list of outputs \(a node index is not"),
    ]
    for change, message in cases:
        p, *_ = _saved(tmp_path)
        _rewrite(p, change)
        with pytest.raises(mg.ModelFileError, match=message):
            mg.load_model(p)


def test_tampered_attributes_that_break_a_shape_rule_are_clear_errors(tmp_path):
    """A stride of 0 (a ZeroDivisionError inside the rule) or a dropout rate of 5 in the file."""
    with mg.Graph() as g:
        x = mg.placeholder((None, 1, 6, 6), name="x")
        t = mg.placeholder_with_default(False, name="training")
        h = ops.max_pool(ops.conv2d(x, mg.variable(np.ones((2, 1, 3, 3), "float32"), name="w")), 2)
        y = ops.dropout(h, 0.5, t)
    path = mg.save_model(tmp_path / "m.npz", {"x": x}, {"y": y}, mg.Session(g))
    kinds = {n["kind"]: i for i, n in enumerate(_description(path)["nodes"])}
    for kind, attr, value, message in [("conv2d", "stride", {"__tuple__": [0, 0]}, "conv2d"),
                                       ("max_pool", "stride", {"__tuple__": [0, 0]}, "max_pool"),
                                       ("dropout_mask", "rate", 5.0, r"dropout rate must lie in \[0, 1\)")]:
        p = mg.save_model(tmp_path / f"{kind}.npz", {"x": x}, {"y": y}, mg.Session(g))
        _rewrite(p, lambda d, a: d["nodes"][kinds[kind]]["attrs"].update({attr: value}))
        with pytest.raises(mg.ModelFileError, match=message):
            mg.load_model(p)


def test_saving_checks_its_arguments(tmp_path):
    with mg.Graph() as g:
        x = mg.placeholder((None, 4), name="x")
        y = mg.placeholder((None,), "int64", name="y")
        w = mg.variable(np.ones((4, 2), "float32"), name="w")
        logits = ops.matmul(x, w)
        loss = ops.softmax_cross_entropy(logits, y)
    sess = mg.Session(g)
    with pytest.raises(mg.ModelFileError, match="the outputs need placeholder 'y' .* not among the inputs"):
        mg.save_model(tmp_path / "m.npz", [x], [loss], sess)
    with pytest.raises(mg.ModelFileError, match="input 'w' .* is a variable, not a placeholder"):
        mg.save_model(tmp_path / "m.npz", {"x": x, "w": w}, [logits], sess)
    with pytest.raises(mg.ModelFileError, match="metadata must be JSON-serialisable"):
        mg.save_model(tmp_path / "m.npz", [x], [logits], sess, metadata={"bad": object()})
    with mg.Graph():
        other = mg.placeholder((1,), name="other")
    with pytest.raises(mg.ModelFileError, match="output 'other' is not a node of the session's graph"):
        mg.save_model(tmp_path / "m.npz", [x], [other], sess)
    assert not (tmp_path / "m.npz").exists()
    model = mg.load_model(mg.save_model(tmp_path / "m.npz", [x, y], {"loss": loss, "logits": logits}, sess))
    with pytest.raises(KeyError, match="no input named 'images'; the model's inputs: x, y"):
        model.run({"images": np.ones((1, 4))})
    with pytest.raises(KeyError, match="no output named 'probs'; the model's outputs: loss, logits"):
        model.run({"x": np.ones((1, 4), "float32")}, "probs")
