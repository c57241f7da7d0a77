"""Checkpoints: exact resume with optimizer state, atomic writes, clear errors, no pickle."""
import io
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
    sess.state["Adam/step"] = np.array(41, np.int64)  # the step count of build()'s optimizer
    path = mg.save(sess, tmp_path / "sub" / "c.npz")
    assert os.path.exists(path) and os.listdir(tmp_path / "sub") == ["c.npz"]
    expected_draw = sess.rng.random(3)

    other = mg.Session(build(seed=5)[0], seed=2)
    assert mg.restore(other, path) == {}
    np.testing.assert_array_equal(other.get_value(other.graph.get("out/w")), np.full((12, 10), 0.5))
    assert other.state == {"Adam/step": 41} and other.state["Adam/step"].dtype == np.int64
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


def test_many_differences_are_counted_by_kind_and_only_the_first_few_listed(tmp_path):
    with mg.Graph() as saved:
        for i in range(9):
            mg.variable(np.zeros(3, "float32"), name=f"old_{i}")
        mg.variable(np.zeros(3, "float32"), name="shared")
    mg.save(mg.Session(saved), tmp_path / "c.npz")
    with mg.Graph() as g:
        for i in range(12):
            mg.variable(np.zeros(2, "float32"), name=f"new_{i:02d}")
        mg.variable(np.zeros(4, "float32"), name="shared")
    with pytest.raises(mg.CheckpointError) as err:
        mg.restore(mg.Session(g), tmp_path / "c.npz")
    lines = str(err.value).splitlines()
    assert lines[0].endswith("does not match the session's variables (22 differences: 12 missing from the "
                             "checkpoint, 1 of another shape or dtype, 9 not in the graph):")
    assert lines[1:] == (
        [f"  missing from the checkpoint: 'new_{i:02d}' (2,) float32" for i in range(5)]
        + ["  ... and 7 more missing from the checkpoint",
           "  mismatch for 'shared': graph has (4,) float32, checkpoint has (3,) float32"]
        + [f"  not in the graph: 'old_{i}' (3,) float32" for i in range(5)]
        + ["  ... and 4 more not in the graph"])


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


# ---------------------------------------------------------------------------------
# hostile files: every corruption is a CheckpointError, found before large allocations


def members(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def write_members(path, contents, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in contents.items():
            z.writestr(name, data)
    return path


def npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr))
    return buf.getvalue()


def npy_header(header: str) -> bytes:
    """A version 1.0 .npy header holding `header` as written (padding included)."""
    text = header.encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def trained_checkpoint(tmp_path, name="good.npz", metadata=None):
    parts = build()
    sess = mg.Session(parts[0])
    xs = np.random.default_rng(0).standard_normal((8, 64)).astype("float32")
    sess.run(parts[4], {parts[1]: xs, parts[2]: np.arange(8) % 10})
    return mg.save(sess, tmp_path / name, metadata=metadata)


def fresh_session():
    return mg.Session(build()[0])


def test_header_declaring_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    import tracemalloc
    good = members(trained_checkpoint(tmp_path))
    huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    for member in ("variables/hidden/w.npy", "state/Adam/hidden/w/m.npy", "meta/user.npy"):
        path = write_members(tmp_path / "huge.npz", {**good, member: npy_header(huge) + bytes(4096)})
        tracemalloc.start()
        with pytest.raises(mg.CheckpointError, match=r"promises 4000000000000 bytes.*holds 4096"):
            mg.restore(fresh_session(), path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 8 << 20, (member, peak)


def honest_bomb(path, good, member, n_bytes, header):
    """`good`'s members plus `member`: a .npy of `n_bytes` zeros whose header tells the truth,
    deflated (about 1000:1)."""
    write_members(path, {name: data for name, data in good.items() if name != member})
    info = zipfile.ZipInfo(member)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a") as z, z.open(info, "w", force_zip64=True) as f:
        f.write(npy_header(header))
        chunk = bytes(1 << 22)
        for _ in range(n_bytes // len(chunk)):
            f.write(chunk)
    return path


@pytest.mark.parametrize("member, header", [
    ("state/Adam/hidden/w/m.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (33554432,), }"),
    ("state/bomb.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (33554432,), }"),
    ("meta/user.npy", "{'descr': '<U33554432', 'fortran_order': False, 'shape': (), }"),
])
def test_deflate_bomb_is_refused_from_its_header(tmp_path, member, header):
    """128 MiB of zeros in about 130 KB: refused without inflating it (main took 1.5 GB and
    several seconds on a 1.5 GB bomb, then restored it as optimizer state)."""
    import time
    import tracemalloc
    n_bytes = 128 << 20 if "U" not in header else 4 * 33554432
    path = honest_bomb(tmp_path / "bomb.npz", members(trained_checkpoint(tmp_path)), member, n_bytes, header)
    assert os.path.getsize(path) < 1 << 20
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(mg.CheckpointError, match="optimizer keeps|no op of the graph keeps|more than"):
        mg.restore(fresh_session(), path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20 and seconds < 2.0, (peak, seconds)


def test_a_compressed_checkpoint_of_honest_size_still_loads(tmp_path):
    good = trained_checkpoint(tmp_path, metadata={"epoch": 3})
    zipped = write_members(tmp_path / "zipped.npz", members(good), compress=zipfile.ZIP_DEFLATED)
    a, b = fresh_session(), fresh_session()
    assert mg.restore(a, good) == mg.restore(b, zipped) == {"epoch": 3}
    for v in a.variables:
        np.testing.assert_array_equal(a.get_value(v), b.get_value(b.graph.get(v.name)))
    assert a.state.keys() == b.state.keys()


@pytest.mark.parametrize("what, change, message", [
    # numpy's header parser raised tokenize.TokenError on this one
    ("unterminated header", {"variables/hidden/w.npy": npy_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 12)L, '''") + bytes(3072)},
     "unreadable .npy header"),
    ("negative dimension", {"variables/hidden/w.npy": npy_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-64, 12), }") + bytes(3072)}, "negative dimension"),
    ("object array", {"variables/hidden/w.npy": npy_header(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }") + b"\x80"}, "would need pickle"),
    ("metadata not JSON", {"meta/user.npy": npy(np.array("{not json"))}, "'meta/user' is not valid JSON"),
    ("metadata nested too deep", {"meta/user.npy": npy(np.array("[" * 100000))}, "not valid JSON"),
    ("metadata null", {"meta/user.npy": npy(np.array("null"))}, "metadata must be a JSON object, got null"),
    ("metadata a list", {"meta/user.npy": npy(np.array("[1, 2]"))}, "metadata must be a JSON object, got a list"),
    ("metadata a number", {"meta/user.npy": npy(np.array(7.0))}, "'meta/user' must be a string"),
    ("foreign generator", {"meta/rng.npy": npy(np.array('{"bit_generator": "MT19937", "state": {}}'))},
     "state is for 'MT19937', the session uses PCG64"),
    ("generator state garbage", {"meta/rng.npy": npy(np.array('{"bit_generator": "PCG64", "state": 3}'))},
     "corrupt random-generator state"),
    ("unexpected member", {"extra.npy": npy(np.zeros(3))}, "unexpected member 'extra'"),
    ("not an array", {"notes.txt": b"hello"}, "'notes.txt'.*not a .npy array"),
    ("truncated member", {"variables/hidden/w.npy": npy(np.zeros((64, 12), "float32"))[:-100]},
     "promises 3072 bytes.*holds 2972"),
])
def test_corrupt_members_are_checkpoint_errors(tmp_path, what, change, message):
    good = members(trained_checkpoint(tmp_path))
    path = write_members(tmp_path / "bad.npz", {**good, **change})
    sess = fresh_session()
    before = sess.get_value(sess.graph.get("hidden/w"))
    with pytest.raises(mg.CheckpointError, match=message):
        mg.restore(sess, path)
    np.testing.assert_array_equal(sess.get_value(sess.graph.get("hidden/w")), before)
    if what.startswith("metadata") and "number" not in what:
        with pytest.raises(mg.CheckpointError, match=message):
            mg.checkpoint.read_metadata(path)


def test_a_bare_npy_file_is_not_a_checkpoint(tmp_path):
    (tmp_path / "c.npz").write_bytes(npy(np.zeros(3)))  # np.load returned an array: no context manager
    with pytest.raises(mg.CheckpointError, match="corrupt or unreadable"):
        mg.restore(fresh_session(), tmp_path / "c.npz")


@pytest.mark.parametrize("change, message", [
    # main restored this, and the next Adam step turned the float32 variable into float64
    ({"state/Adam/hidden/w/m.npy": npy(np.zeros((64, 12)))},
     r"state 'Adam/hidden/w/m': the optimizer keeps \(64, 12\) float32, checkpoint has \(64, 12\) float64"),
    ({"state/Adam/hidden/w/v.npy": npy(np.zeros((12, 64), "float32"))}, r"keeps \(64, 12\) float32.*\(12, 64\)"),
    ({"state/Adam/hidden/w/t.npy": npy(np.array(1.5))}, "a step count must be an integer scalar"),
    ({"state/Adam/step.npy": npy(np.array([1, 2]))}, "a step count must be an integer scalar"),
    ({"state/Adam/hidden/w/t.npy": npy(np.array(-3))}, "a step count must be >= 0, got -3"),
    ({"state/SGD/hidden/w/momentum.npy": npy(np.zeros((64, 12), "float32"))},
     "state 'SGD/hidden/w/momentum'.*no op of the graph keeps it"),
    ({"state/Adam/hidden/w/t.npy": None}, r"'Adam/hidden/w/t' missing while 'Adam/hidden/w/m', 'Adam/hidden/w/v'"),
])
def test_optimizer_state_is_checked_like_variables(tmp_path, change, message):
    good = members(trained_checkpoint(tmp_path))
    contents = {**good, **{k: v for k, v in change.items() if v is not None}}
    for k, v in change.items():
        if v is None:
            del contents[k]
    path = write_members(tmp_path / "bad.npz", contents)
    sess = fresh_session()
    with pytest.raises(mg.CheckpointError, match=message):
        mg.restore(sess, path)
    assert sess.state == {}  # untouched


def test_a_graph_without_optimizer_takes_the_weights_only(tmp_path):
    """Inference graphs (diagrams, predictions) restore a training checkpoint's weights; its
    optimizer state is left unread, as no op of theirs would use it."""
    path = trained_checkpoint(tmp_path)
    trained = mg.Session(build()[0])
    mg.restore(trained, path)
    with mg.Graph() as g:
        x = mg.placeholder((None, 64), name="x")
        with mg.name_scope("hidden"):
            w1 = mg.variable(np.zeros((64, 12), "float32"), name="w")
            b1 = mg.variable(np.zeros(12, "float32"), name="b")
        with mg.name_scope("out"):
            w2 = mg.variable(np.zeros((12, 10), "float32"), name="w")
        ops.matmul(ops.relu(ops.matmul(x, w1) + b1), w2)
    inference = mg.Session(g)
    mg.restore(inference, path)
    assert inference.state == {}
    for v in inference.variables:
        np.testing.assert_array_equal(inference.get_value(v), trained.get_value(trained.graph.get(v.name)))


def test_state_that_no_op_declares_is_not_saved(tmp_path):
    sess = fresh_session()
    sess.state["custom/counter"] = np.array(41, np.int64)
    with pytest.raises(mg.CheckpointError, match="'custom/counter': no op of the graph declares it"):
        mg.save(sess, tmp_path / "c.npz")
    assert not os.listdir(tmp_path)


def test_non_dict_metadata_is_refused_when_saving(tmp_path):
    with pytest.raises(mg.CheckpointError, match="metadata must be a dict, got list"):
        mg.save(fresh_session(), tmp_path / "c.npz", metadata=[1, 2])


# ---------------------------------------------------------------------------------
# the file system: leftovers, permissions, a full disk


def test_next_save_removes_temporaries_of_a_killed_save(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "checkpoint.npz"
    mg.save(fresh_session(), path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    leftovers = [tmp_path / ".checkpoint.npz.k2j4_x9a.tmp",  # tempfile.mkstemp's form (main's saves)
                 tmp_path / f".checkpoint.npz.{dead}.0badc0de.tmp"]  # ours, from a process now gone
    alive = tmp_path / f".checkpoint.npz.{os.getppid()}.0badc0de.tmp"  # a concurrent writer's: kept
    unrelated = tmp_path / ".other.npz.k2j4_x9a.tmp"
    for p in leftovers + [alive, unrelated]:
        p.write_bytes(b"partial")
    mg.save(fresh_session(), path)
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, unrelated.name, "checkpoint.npz"])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoint_gets_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = mg.save(fresh_session(), tmp_path / "c.npz")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


DISK_FULL = """
import resource, signal, sys
import numpy as np
import minigraph as mg
sys.path.insert(0, {folder!r})
from helper import build
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
sess = mg.Session(build()[0])
sess.set_value(sess.graph.get("hidden/w"), np.ones((64, 12), "float32"))
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # no file may grow past 4 KB: a full disk
try:
    mg.save(sess, {path!r})
except mg.CheckpointError as exc:
    print(exc)
"""


def test_a_full_disk_is_one_clear_line_and_the_old_checkpoint_stays(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "c.npz"
    trained_checkpoint(tmp_path, "c.npz")
    before = path.read_bytes()
    (tmp_path / "helper.py").write_text("import numpy as np\nimport minigraph as mg\nfrom minigraph import ops\n"
                                        + _source_of_build())
    out = subprocess.run([sys.executable, "-c", DISK_FULL.format(folder=str(tmp_path), path=str(path))],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1 and not out.stderr
    assert out.stdout.startswith(f"cannot write checkpoint {path}: File too large (the previous checkpoint is intact)")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.npz", "helper.py"]


def _source_of_build():
    import inspect
    return inspect.getsource(build)
