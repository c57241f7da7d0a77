"""Checkpoints: exact resume with optimizer state, atomic writes, clear errors, no pickle."""
import os
import zipfile

import numpy as np
import pytest

import minigraph as mg
from minigraph import ops


def build(seed=0, hidden=12, optimizer="adam"):
    """A small classifier on 8x8 digits (flattened), with a random-noise input to exercise
    the session generator; returns (graph, x, y, loss, train)."""
    rng = np.random.default_rng(seed)
    with mg.Graph() as g:
        x = mg.placeholder((None, 64), name="x")
        y = mg.placeholder((None,), "int64", name="y")
        with mg.name_scope("hidden"):
            w1 = mg.variable((rng.standard_normal((64, hidden)) * 0.2).astype("float32"), name="w")
            b1 = mg.variable(np.zeros(hidden, "float32"), name="b")
        with mg.name_scope("out"):
            w2 = mg.variable((rng.standard_normal((hidden, 10)) * 0.2).astype("float32"), name="w")
        logits = ops.matmul(ops.relu(ops.matmul(x, w1) + b1), w2)
        loss = ops.softmax_cross_entropy(logits, y)
        opt = mg.optim.Adam(0.01) if optimizer == "adam" else mg.optim.SGD(0.1, momentum=0.9)
        train = opt.minimize(loss)
    return g, x, y, loss, train


@pytest.fixture(scope="module")
def data():
    ds = mg.data.digits(test_size=0.5, seed=0)
    return ds.x_train[:300].reshape(300, 64), ds.y_train[:300]


def train_epochs(sess, parts, data, epochs, batch_size=32):
    """Train whole epochs [start, stop); the noise added to inputs comes from sess.rng."""
    _, x, y, loss, train = parts
    xs, ys = data
    losses = []
    for epoch in range(*epochs):
        for xb, yb in mg.data.batches(xs, ys, batch_size, seed=7, epoch=epoch):
            noisy = xb + 0.05 * sess.rng.standard_normal(xb.shape).astype("float32")
            losses.append(float(sess.run([loss, train], {x: noisy, y: yb})[0]))
    return losses


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_two_epochs_plus_resumed_one_equal_three(tmp_path, data, optimizer):
    parts = build(optimizer=optimizer)
    straight = mg.Session(parts[0], seed=3)
    ref_losses = train_epochs(straight, parts, data, (0, 3))

    first = build(optimizer=optimizer)
    sess = mg.Session(first[0], seed=3)
    losses = train_epochs(sess, first, data, (0, 2))
    mg.save(sess, tmp_path / "ckpt.npz", metadata={"epoch": 2})
    sess.close()
    assert mg.checkpoint.read_metadata(tmp_path / "ckpt.npz") == {"epoch": 2}

    again = build(seed=99, optimizer=optimizer)  # other initial values: all must come from the file
    resumed = mg.Session(again[0], seed=12345)
    meta = mg.restore(resumed, tmp_path / "ckpt.npz")
    assert meta == {"epoch": 2}
    losses += train_epochs(resumed, again, data, (meta["epoch"], 3))

    assert losses == ref_losses  # bitwise: float32 values compared exactly
    for v_ref, v in zip(straight.variables, resumed.variables):
        assert v_ref.name == v.name
        np.testing.assert_array_equal(straight.get_value(v_ref), resumed.get_value(v))
    assert straight.state.keys() == resumed.state.keys()
    for key in straight.state:
        np.testing.assert_array_equal(straight.state[key], resumed.state[key])


def test_round_trip_of_values_state_and_generator(tmp_path):
    parts = build()
    sess = mg.Session(parts[0], seed=1)
    sess.set_value(parts[0].get("out/w"), np.full((12, 10), 0.5, "float32"))
    sess.state["custom/counter"] = np.array(41, np.int64)
    path = mg.save(sess, tmp_path / "sub" / "c.npz")
    assert os.path.exists(path) and os.listdir(tmp_path / "sub") == ["c.npz"]
    expected_draw = sess.rng.random(3)

    other = mg.Session(build(seed=5)[0], seed=2)
    assert mg.restore(other, path) == {}
    np.testing.assert_array_equal(other.get_value(other.graph.get("out/w")), np.full((12, 10), 0.5))
    assert other.state == {"custom/counter": 41} and other.state["custom/counter"].dtype == np.int64
    np.testing.assert_array_equal(other.rng.random(3), expected_draw)


def test_interrupted_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    parts = build()
    sess = mg.Session(parts[0])
    path = tmp_path / "ckpt.npz"
    mg.save(sess, path)
    before = sess.get_value(parts[0].get("hidden/w"))
    sess.set_value(parts[0].get("hidden/w"), before + 1)

    real_savez = np.savez

    def crash_mid_write(file, **arrays):
        real_savez(file, **dict(list(arrays.items())[:2]))  # part of the archive is written...
        raise KeyboardInterrupt  # ...then the process is interrupted
    monkeypatch.setattr(np, "savez", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        mg.save(sess, path)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    fresh = mg.Session(build()[0])
    mg.restore(fresh, path)
    np.testing.assert_array_equal(fresh.get_value(fresh.graph.get("hidden/w")), before)


def test_mismatched_checkpoint_lists_every_difference(tmp_path):
    sess = mg.Session(build(hidden=12)[0])
    mg.save(sess, tmp_path / "c.npz")
    with mg.Graph() as g:
        mg.variable(np.zeros((64, 13), "float32"), name="w")  # top level: not in the checkpoint
        with mg.name_scope("hidden"):
            mg.variable(np.zeros((64, 13), "float32"), name="w")
            mg.variable(np.zeros(12, "float64"), name="b")
    other = mg.Session(g)
    before = other.get_value(g.get("hidden/w"))
    with pytest.raises(mg.CheckpointError) as err:
        mg.restore(other, tmp_path / "c.npz")
    text = str(err.value)
    assert "4 differences" in text
    assert "missing from the checkpoint: 'w'" in text
    assert "mismatch for 'hidden/w'" in text and "(64, 13)" in text and "(64, 12)" in text
    assert "mismatch for 'hidden/b'" in text and "float64" in text
    assert "not in the graph: 'out/w'" in text
    np.testing.assert_array_equal(other.get_value(g.get("hidden/w")), before)  # untouched


def test_corrupt_and_foreign_files(tmp_path):
    sess = mg.Session(build()[0])
    good = tmp_path / "good.npz"
    mg.save(sess, good)
    blob = good.read_bytes()
    cases = {
        "truncated.npz": blob[:len(blob) // 2],
        "garbage.npz": b"definitely not a zip archive",
        "empty.npz": b"",
        "flipped.npz": blob[:200] + bytes([blob[200] ^ 0xFF]) + blob[201:],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(mg.CheckpointError, match="corrupt|not a minigraph checkpoint"):
            mg.restore(sess, tmp_path / name)
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    with pytest.raises(mg.CheckpointError, match="not a minigraph checkpoint"):
        mg.restore(sess, tmp_path / "foreign.npz")
    with pytest.raises(mg.CheckpointError, match="no checkpoint at"):
        mg.restore(sess, tmp_path / "absent.npz")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))
    sess = mg.Session(build()[0])
    path = tmp_path / "evil.npz"
    mg.save(sess, path)
    with zipfile.ZipFile(path, "a") as z:  # add an object array, which only pickle can read
        with z.open("state/evil.npy", "w") as f:
            np.lib.format.write_array(f, np.array([Boom()], dtype=object), allow_pickle=True)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("pickle.loads was called"))
    with pytest.raises(mg.CheckpointError, match="corrupt or unreadable"):
        mg.restore(sess, path)
    assert not (tmp_path / "pwned").exists()


def test_unsaveable_state_is_a_clear_error(tmp_path):
    sess = mg.Session(build()[0])
    sess.state[("tuple", "key")] = np.zeros(1)
    with pytest.raises(mg.CheckpointError, match="state keys must be strings"):
        mg.save(sess, tmp_path / "c.npz")
    assert not os.listdir(tmp_path)
