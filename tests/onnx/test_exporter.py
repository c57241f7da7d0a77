"""mg.onnx.export against onnxruntime: every exportable op kind, conv/pool geometry (asymmetric
SAME padding, explicit pads, dilation, strides), GoogLeNet, the Inception module, names, dynamic
batch, unsupported kinds and the semantics the issue pins (pads order, LRN, Dropout, Softmax)."""
import os

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers, models, ops
from minigraph.onnx import table

onnx = pytest.importorskip("onnx")

RNG = np.random.default_rng(0)


def arr(*shape, positive=False):
    a = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.5 if positive else a


def export_and_compare(tmp_path, kit, build, inputs, tol=1e-5, **options):
    """Build `build(*placeholders)` on batch-None placeholders like `inputs`, export it, run it in
    onnxruntime and compare with minigraph; returns (onnx model proto, minigraph output)."""
    with mg.Graph() as g:
        phs = [mg.placeholder((None,) + a.shape[1:], dtype=a.dtype, name=f"in{i}") for i, a in enumerate(inputs)]
        out = build(*phs)
    sess = mg.Session(g)
    expected = sess.run(out, dict(zip(phs, inputs)))
    path = mg.onnx.export(out, tmp_path / "m.onnx", session=sess, **options)
    (got,) = kit.run(str(path), *inputs)
    assert got.shape == expected.shape
    assert kit.rel_err(got, expected) <= tol, kit.rel_err(got, expected)
    return onnx.load(str(path)), expected


def w_var(*shape, name="w"):
    return mg.variable(arr(*shape), name=name)


# one case per exportable kind (leaves included): (inputs, builder)
KIND_CASES = {
    "placeholder": ([arr(2, 3)], lambda x: ops.identity(x)),
    "variable": ([arr(2, 3)], lambda x: x + w_var(3)),
    "constant": ([arr(2, 3)], lambda x: x * mg.constant(arr(3))),
    "placeholder_with_default": ([arr(2, 3)], lambda x: x * mg.placeholder_with_default(arr(3))),
    "conv2d": ([arr(2, 3, 9, 8)], lambda x: ops.conv2d(x, w_var(4, 3, 3, 2), w_var(4, name="b"), stride=(2, 1),
                                                         padding=((1, 0), (2, 1)), dilation=(1, 2))),
    "conv1x1": ([arr(2, 3, 5, 4)], lambda x: ops.conv1x1(x, w_var(6, 3), w_var(6, name="b"))),
    "max_pool": ([arr(2, 3, 9, 8)], lambda x: ops.max_pool(x, (3, 2), (2, 1), padding=((1, 0), (0, 1)))),
    "avg_pool": ([arr(2, 3, 9, 8)], lambda x: ops.avg_pool(x, 3, 2, padding="SAME")),
    "global_avg_pool": ([arr(2, 3, 5, 4)], lambda x: ops.global_avg_pool(x)),
    "local_response_norm": ([arr(2, 7, 3, 3)], lambda x: ops.local_response_norm(x, 3, 1e-2, 0.75, 1.5)),
    "add": ([arr(2, 3, 4), arr(2, 1, 4)], lambda a, b: a + b),
    "sub": ([arr(2, 3, 4), arr(2, 3, 1)], lambda a, b: a - b),
    "mul": ([arr(2, 3, 4), arr(2, 3, 4)], lambda a, b: a * b),
    "div": ([arr(2, 3), arr(2, 3, positive=True)], lambda a, b: a / b),
    "square": ([arr(2, 3)], lambda x: ops.square(x)),
    "neg": ([arr(2, 3)], lambda x: -x),
    "relu": ([arr(2, 3)], lambda x: ops.relu(x)),
    "exp": ([arr(2, 3)], lambda x: ops.exp(x)),
    "log": ([arr(2, 3, positive=True)], lambda x: ops.log(x)),
    "sqrt": ([arr(2, 3, positive=True)], lambda x: ops.sqrt(x)),
    "matmul": ([arr(2, 5)], lambda x: x @ w_var(5, 3)),
    "sum": ([arr(2, 3, 4)], lambda x: ops.sum(x, axis=(1, -1), keepdims=True)),
    "mean": ([arr(2, 3, 4)], lambda x: ops.mean(x, axis=2)),
    "softmax": ([arr(2, 3, 4)], lambda x: ops.softmax(x, axis=1)),
    "log_softmax": ([arr(2, 5)], lambda x: ops.log_softmax(x)),
    "concat": ([arr(2, 3, 4), arr(2, 2, 4)], lambda a, b: ops.concat([a, b], axis=1)),
    "reshape": ([arr(2, 3, 4)], lambda x: ops.reshape(x, (-1, 2, 6))),
    "flatten": ([arr(2, 3, 4)], lambda x: ops.flatten(x)),
    "transpose": ([arr(2, 3, 4)], lambda x: ops.transpose(x, (0, 2, 1))),
    "pad_axis": ([arr(2, 3, 4)], lambda x: ops.pad_axis(x, 2, 1, axis=-1)),
    "identity": ([arr(2, 3)], lambda x: ops.identity(x)),
    "dropout_mask": ([arr(2, 3)], lambda x: ops.dropout(x, 0.5, mg.placeholder_with_default(False))),
    "sigmoid": ([arr(2, 3)], lambda x: ops.sigmoid(x)),
    "tanh": ([arr(2, 3)], lambda x: ops.tanh(x)),
    "stop_gradient": ([arr(2, 3)], lambda x: ops.stop_gradient(x) * 2.0),
    "where": ([RNG.random((2, 3)) > 0.5, arr(2, 3), arr(2, 3)], lambda c, a, b: ops.where(c, a, b)),
    "argmax": ([arr(2, 5, 3)], lambda x: ops.argmax(x, axis=1)),
    "batch_normalization": ([arr(2, 3, 4, 4)], lambda x: ops.batch_normalization(
        x, w_var(3, name="mean"), mg.variable(arr(3, positive=True), name="var"), w_var(3, name="gamma"),
        w_var(3, name="beta"), epsilon=1e-3)),
    "batch_norm": ([arr(2, 3, 4, 4)], lambda x: ops.batch_norm(
        x, w_var(3, name="gamma"), w_var(3, name="beta"), mg.variable(arr(3), name="mm", trainable=False),
        mg.variable(arr(3, positive=True), name="mv", trainable=False), mg.placeholder_with_default(False))),
}


def test_every_exportable_kind_has_a_case():
    assert set(KIND_CASES) == set(table.EXPORTS)


@pytest.mark.parametrize("kind", sorted(KIND_CASES))
def test_kind_exports_and_matches_onnxruntime(tmp_path, kit, kind):
    inputs, build = KIND_CASES[kind]
    model, _ = export_and_compare(tmp_path, kit, build, inputs)
    assert model.opset_import[0].version == 17 and model.producer_name == "minigraph"


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_reductions_write_axes_as_the_opset_wants(tmp_path, kit, opset):
    model, _ = export_and_compare(tmp_path, kit, lambda x: ops.mean(x, axis=(1, 2)) + ops.mean(ops.sum(x, axis=1), axis=1),
                                  [arr(2, 3, 4)], opset=opset)
    mean = next(n for n in model.graph.node if n.op_type == "ReduceMean")
    assert (len(mean.input) == 2) == (opset >= 18)
    assert any(a.name == "axes" for a in mean.attribute) == (opset < 18)


GEOMETRY = [  # (builder, input shape): SAME with stride is asymmetric (extra row/column at the end)
    (lambda x: ops.conv2d(x, w_var(4, 3, 3, 3), stride=2, padding="SAME"), (2, 3, 10, 9)),
    (lambda x: ops.conv2d(x, w_var(4, 3, 4, 2), padding="SAME"), (2, 3, 7, 6)),
    (lambda x: ops.conv2d(x, w_var(4, 3, 3, 3), stride=(1, 3), padding=((0, 2), (1, 0)), dilation=2), (2, 3, 11, 12)),
    (lambda x: ops.conv2d(x, w_var(4, 3, 5, 5), stride=3, padding=1), (2, 3, 16, 17)),
    (lambda x: ops.max_pool(x, 3, 2, padding="SAME"), (2, 3, 10, 11)),
    (lambda x: ops.max_pool(x, (2, 3), (1, 2), padding=((1, 0), (0, 2))), (2, 3, 7, 8)),
    (lambda x: ops.avg_pool(x, 3, 2, padding="SAME", count_include_pad=True), (2, 3, 10, 11)),
    (lambda x: ops.avg_pool(x, (3, 2), (2, 2), padding=((2, 1), (1, 0))), (2, 3, 9, 8)),
    (lambda x: ops.avg_pool(x, (3, 2), (2, 2), padding=((2, 1), (1, 0)), count_include_pad=True), (2, 3, 9, 8)),
]


@pytest.mark.parametrize("case", range(len(GEOMETRY)))
def test_conv_and_pool_geometry(tmp_path, kit, case):
    build, shape = GEOMETRY[case]
    export_and_compare(tmp_path, kit, build, [arr(*shape)])


def test_pads_are_written_begins_then_ends(tmp_path, kit):
    """minigraph's ((top, bottom), (left, right)) = ((1, 2), (3, 0)) is ONNX [1, 3, 2, 0];
    TF-SAME 3x3/2 on the conv's 11x8 output pads H (1, 1) and W (0, 1): [1, 0, 1, 1], written
    out, never as auto_pad. (A 3x5 kernel: each padding side stays below the kernel's extent.)"""
    model, _ = export_and_compare(tmp_path, kit, lambda x: ops.max_pool(ops.conv2d(x, w_var(2, 3, 3, 5), padding=((1, 2), (3, 0))),
                                                                        3, 2, padding="SAME"), [arr(2, 3, 10, 9)])
    conv, pool = [n for n in model.graph.node if n.op_type in ("Conv", "MaxPool")]
    attrs = {a.name: list(a.ints) for a in conv.attribute}
    assert attrs["pads"] == [1, 3, 2, 0]
    pool_attrs = {a.name: a for a in pool.attribute}
    assert list(pool_attrs["pads"].ints) == [1, 0, 1, 1]
    assert "auto_pad" not in pool_attrs


def test_softmax_axis_is_one_axis_and_opset_below_13_is_refused(tmp_path):
    with mg.Graph():
        x = mg.placeholder((None, 3, 4))
        y = ops.softmax(x, axis=1)
    model = mg.onnx.build_model(y)
    (node,) = model.graph.node
    assert node.op_type == "Softmax" and node.attribute[0].i == 1
    with pytest.raises(ValueError, match="opset must be an int from 13"):
        mg.onnx.export(y, tmp_path / "m.onnx", opset=12)


def test_every_unsupported_opset_is_an_export_error_naming_the_supported_range(tmp_path):
    with mg.Graph():
        y = ops.relu(mg.placeholder((None, 3)))
    newest = onnx.defs.onnx_opset_version()
    for opset in (12, newest + 1, 99, -1, True, 17.0, "17"):
        with pytest.raises(mg.onnx.OnnxExportError, match=f"opset must be an int from 13 .* to {newest} "
                                                          r"\(the newest the installed onnx package knows\)"):
            mg.onnx.export(y, tmp_path / "m.onnx", opset=opset)
    assert not (tmp_path / "m.onnx").exists()
    mg.onnx.export(y, tmp_path / "m.onnx", opset=np.int64(newest))
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == newest


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_batch_sizes_below_one_are_refused(tmp_path, batch_size):
    with mg.Graph():
        y = ops.relu(mg.placeholder((None, 3)))
    for dynamic in (False, True):
        with pytest.raises(mg.onnx.OnnxExportError, match="batch_size must be a positive integer, got"):
            mg.onnx.export(y, tmp_path / "m.onnx", dynamic_batch=dynamic, batch_size=batch_size)
    assert not (tmp_path / "m.onnx").exists()


def test_dropout_is_the_identity_and_the_switch_is_not_an_input(tmp_path, kit):
    with mg.Graph() as g:
        x = mg.placeholder((None, 4), name="x")
        training = mg.placeholder_with_default(False, name="training")
        y = ops.dropout(x, 0.5, training, name="drop")
    model = mg.onnx.build_model(y, mg.Session(g))
    assert [i.name for i in model.graph.input] == ["x"]
    assert [n.op_type for n in model.graph.node] == ["Dropout"]
    assert not any(n.name == "training" for n in model.graph.initializer)
    data = arr(3, 4)
    path = kit.save(model, tmp_path)
    np.testing.assert_array_equal(kit.run(path, data)[0], data)


def test_lrn_is_caffe_form_and_even_sizes_are_refused(tmp_path, kit):
    with mg.Graph():
        x = mg.placeholder((None, 6, 2, 2))
        ok = ops.local_response_norm(x, 5, 1e-3, 0.75, 2.0, name="odd")
        even = ops.local_response_norm(x, 4, name="even")
    (node,) = mg.onnx.build_model(ok).graph.node
    attrs = {a.name: (a.i if a.type == a.INT else a.f) for a in node.attribute}
    assert attrs["size"] == 5 and attrs["bias"] == 2.0 and attrs["alpha"] == pytest.approx(1e-3)
    with pytest.raises(mg.onnx.UnsupportedOpError, match=r"even size 4.*'even'"):
        mg.onnx.export([ok, even], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_kinds_are_listed_with_counts_and_names(tmp_path):
    with mg.Graph():
        x = mg.placeholder((None, 3, 6, 6), name="x")
        w = mg.variable(arr(2, 3, 3, 3), name="w")
        h = ops.conv2d(x, w, padding=1)
        loss = ops.sum(ops.square(h))
        gx, gw = mg.gradients(loss, [x, w])
    with pytest.raises(mg.onnx.UnsupportedOpError) as info:
        mg.onnx.export([gx, gw], tmp_path / "g.onnx")
    err = info.value
    assert "conv2d_backprop_input (no ONNX counterpart)" in err.problems
    assert "conv2d_backprop_filter (no ONNX counterpart)" in err.problems
    assert "x1:" in str(err) and "cannot export" in str(err)
    assert not (tmp_path / "g.onnx").exists()


def test_googlenet_matches_onnxruntime(tmp_path, kit):
    with mg.Graph() as g:
        net = models.googlenet(rng=0)
    sess = mg.Session(g)
    x = arr(2, 3, 224, 224)
    expected = sess.run(net.logits, {net.x: x})
    path = mg.onnx.export({"logits": net.logits, "probs": net.probs}, tmp_path / "googlenet.onnx", session=sess)
    logits, probs = kit.run(str(path), x)
    assert kit.rel_err(logits, expected) <= 1e-5
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == ["logits", "probs"]
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    names = {n.name for n in model.graph.node}
    assert "inception_4e/branch_5x5/conv/conv2d" in names and "norm1/local_response_norm" in names


def test_batch_normalised_googlenet_matches_onnxruntime(tmp_path, kit):
    """BN-Inception's baseline (a batch norm before every ReLU): the stateful batch_norm ops export
    in their inference form."""
    with mg.Graph() as g:
        net = models.googlenet(batch_norm=True, rng=0)
    sess = mg.Session(g)
    for v in sess.variables:  # moving statistics that do something
        if "moving" in v.name:
            sess.set_value(v, sess.get_value(v) + np.float32(0.3))
    x = arr(1, 3, 224, 224)
    expected = sess.run(net.logits, {net.x: x})
    path = mg.onnx.export(net.logits, tmp_path / "bn.onnx", session=sess)
    (logits,) = kit.run(str(path), x)
    assert kit.rel_err(logits, expected) <= 1e-5
    assert sum(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node) == 57


def test_inception_module_matches_onnxruntime_at_a_fixed_batch(tmp_path, kit):
    x = arr(3, 192, 28, 28)
    model, _ = export_and_compare(tmp_path, kit, lambda h: models.inception_module(h, *models.GOOGLENET_INCEPTION["3a"],
                                                                                   name="inception_3a", rng=1),
                                  [x], dynamic_batch=False, batch_size=3)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


def test_session_values_are_written_not_initial_values(tmp_path, kit):
    with mg.Graph() as g:
        x = mg.placeholder((None, 2), name="x")
        h = layers.dense(x, 3, name="fc")
    sess = mg.Session(g)
    w = g.get("fc/weights")
    sess.set_value(w, np.full((2, 3), 2.0, np.float32))
    model = mg.onnx.build_model(h, sess)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["fc/weights"], np.full((2, 3), 2.0, np.float32))
    initial = {t.name: onnx.numpy_helper.to_array(t) for t in mg.onnx.build_model(h).graph.initializer}
    np.testing.assert_array_equal(initial["fc/weights"], w.op.initial_value)


def test_fused_conv_activation_exports_as_conv_then_relu(tmp_path, kit):
    with mg.Graph():
        x = mg.placeholder((None, 3, 6, 6), name="x")
        h = layers.conv2d(x, 4, 3, name="conv")
    opt = mg.optimize(h, feed=[x])
    fused = opt.outputs[0]
    assert fused.op.activation == "relu"
    model = mg.onnx.build_model(fused)
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
    data = arr(2, 3, 6, 6)
    got = kit.run(kit.save(model, tmp_path), data)[0]
    expected = mg.Session(opt.graph).run(fused, {opt.fed[0]: data})
    assert kit.rel_err(got, expected) <= 1e-6


def test_bad_fetches_and_foreign_sessions():
    with mg.Graph() as g1:
        x = mg.placeholder((None, 2))
    with mg.Graph() as g2:
        mg.placeholder((None, 2))
    with pytest.raises(TypeError):
        mg.onnx.build_model([])
    with pytest.raises(ValueError, match="another graph"):
        mg.onnx.build_model(x, mg.Session(g2))
    with pytest.raises(ValueError, match="names must differ"):
        mg.onnx.build_model([x, x])
    assert g1 is x.graph


def test_one_node_under_two_output_names(tmp_path, kit):
    with mg.Graph():
        x = mg.placeholder((None, 2), name="x")
        y = ops.relu(x, name="y")
    path = mg.onnx.export({"a": y, "b": y, "input_copy": x}, tmp_path / "m.onnx")
    data = arr(3, 2)
    a, b, c = kit.run(str(path), data)
    np.testing.assert_array_equal(a, np.maximum(data, 0))
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(c, data)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_file_gets_the_users_umask_and_replaces_the_old_one_whole(tmp_path):
    with mg.Graph():
        y = ops.relu(mg.placeholder((None, 3)))
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    old = os.umask(0o022)
    try:
        mg.onnx.export(y, path)
        mg.onnx.export(y, tmp_path / "new" / "m.onnx")  # the folder is created
    finally:
        os.umask(old)
    for written in (path, tmp_path / "new" / "m.onnx"):
        assert os.stat(written).st_mode & 0o777 == 0o644  # as checkpoints get (mkstemp's was 0o600)
        assert onnx.load(str(written)).graph.node[0].op_type == "Relu"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "new"]  # no temporary file left


def test_a_write_that_fails_is_one_onnx_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    import errno
    with mg.Graph():
        y = ops.relu(mg.placeholder((None, 3)))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(mg.onnx.OnnxError, match=r"cannot write .*m.onnx: .*\(nothing was written\)"):
        mg.onnx.export(y, tmp_path / "file" / "m.onnx")
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(mg.onnx.OnnxError, match=r"cannot write .*m.onnx: No space left on device "
                                                r"\(the previous file is intact\)"):
        mg.onnx.export(y, target)
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["file", "m.onnx"]  # no temporary file left
