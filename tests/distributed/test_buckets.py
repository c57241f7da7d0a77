"""Bucket planning and the allreduce nodes, in one process (a size-1 communicator reduces
nothing, so the averaged gradients must equal share * the plain gradients)."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import distributed, ops


def three_layers(dtype="float64"):
    """x -> dense 6x5 -> relu -> dense 5x4 -> relu -> dense 4x1 -> mean square."""
    rng = np.random.default_rng(0)
    with mg.Graph() as g:
        x = mg.placeholder((None, 6), dtype=dtype, name="x")
        ws = [mg.variable(rng.standard_normal(s).astype(dtype), name=f"w{i}")
              for i, s in enumerate([(6, 5), (5, 4), (4, 1)])]
        h = x
        for w in ws[:-1]:
            h = ops.relu(ops.matmul(h, w))
        loss = ops.mean(ops.square(ops.matmul(h, ws[-1])))
    return g, x, ws, loss


@pytest.fixture
def comm():
    c = distributed.Communicator(0, 1, timeout=10)
    yield c
    c.close()


@pytest.mark.parametrize("bucket_bytes,expected", [(1, [["w2"], ["w1"], ["w0"]]),      # one per variable
                                                   (170, [["w2", "w1"], ["w0"]]),      # 32 + 160 bytes >= 170
                                                   (1 << 20, [["w2", "w1", "w0"]])])   # all in one
def test_buckets_by_bytes_in_backward_order(comm, bucket_bytes, expected):
    g, x, ws, loss = three_layers()
    opt = distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm, bucket_bytes=bucket_bytes)
    pairs = opt.compute_gradients(loss)
    assert [v for _, v in pairs] == ws  # var_list order, whatever the buckets
    assert [[v.name for _, v in b.pairs] for b in opt.buckets] == expected
    assert [b.nbytes for b in opt.buckets] == [8 * sum(v.shape[0] * v.shape[1] for v in (dict(
        (v.name, v) for v in ws)[n] for n in names)) for names in expected]


def test_averaged_gradients_are_share_times_the_gradients(comm):
    g, x, ws, loss = three_layers()
    opt = distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm, bucket_bytes=100)
    pairs = opt.compute_gradients(loss)
    plain = mg.gradients(loss, ws)
    xb = np.random.default_rng(1).standard_normal((7, 6))
    sess = mg.Session(g)
    got = sess.run([p for p, _ in pairs], {x: xb})
    want = sess.run(plain, {x: xb})
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)  # share 1 (size 1): a copy
    got = sess.run([p for p, _ in pairs], {x: xb, opt.share: 0.25})
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b * 0.25)


def test_allreduce_starts_before_the_backward_pass_ends(comm):
    """A bucket's start node is created as soon as its gradients exist, so a run (creation
    order) reaches it before the gradients of earlier layers are computed."""
    g, x, ws, loss = three_layers()
    opt = distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm, bucket_bytes=1)
    opt.compute_gradients(loss)
    first_start = opt.buckets[0].start  # w2's bucket: its allreduce can run first
    backward = [n for n in g.nodes if "_grad" in n.name]
    later = [n for n in backward if n.index > first_start.index]
    assert later, "the allreduce of the last layer's gradients must come before the rest of the backward pass"
    assert any("w1" in n.name or "matmul" in n.name for n in later)
    assert [b.start.index for b in opt.buckets] == sorted(b.start.index for b in opt.buckets)


def test_update_applies_the_averaged_gradients(comm):
    g, x, ws, loss = three_layers()
    with g:
        train = distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm, bucket_bytes=64).minimize(loss)
    xb = np.random.default_rng(2).standard_normal((5, 6))
    sess = mg.Session(g)
    before = [sess.get_value(w) for w in ws]
    grads = sess.run(mg.gradients(loss, ws), {x: xb})
    assert int(sess.run(train, {x: xb})) == 1
    for w, w0, gw in zip(ws, before, grads):
        np.testing.assert_allclose(sess.get_value(w), w0 - 0.1 * gw, rtol=1e-15, atol=1e-15)


def test_errors(comm):
    with pytest.raises(TypeError, match="wraps a mg.optim optimizer"):
        distributed.DistributedOptimizer("sgd", comm)
    with pytest.raises(TypeError, match="needs a communicator"):
        distributed.DistributedOptimizer(mg.optim.SGD(0.1), None)
    with pytest.raises(ValueError, match="bucket_bytes must be >= 1"):
        distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm, bucket_bytes=0)
    with mg.Graph():
        w = mg.variable(np.ones(3), name="w")
        with pytest.raises(mg.ShapeError, match="must be a float scalar"):
            distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm).compute_gradients(w * 2.0)


def test_a_model_file_refuses_the_distributed_step(comm, tmp_path):
    """The allreduce nodes belong to this process's communicator: a model file cannot hold
    them (save the forward outputs instead), and says so."""
    g, x, ws, loss = three_layers()
    with g:
        train = distributed.DistributedOptimizer(mg.optim.SGD(0.1), comm).minimize(loss)
    sess = mg.Session(g)
    mg.save_model(tmp_path / "forward.npz", {"x": x}, {"loss": loss}, sess)  # fine
    with pytest.raises(mg.ModelFileError, match="cannot save attribute 'comm' of allreduce_start"):
        mg.save_model(tmp_path / "step.npz", {"x": x}, {"train": train}, sess)
