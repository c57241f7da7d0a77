"""Fuzzed checkpoint files: a valid checkpoint damaged at random (bytes flipped, cut or added,
zip directory fields changed, members replaced by hand-made .npy headers and data, dropped,
doubled or added, metadata replaced by random JSON), then restored.

A case ends in a CheckpointError naming the file (the session untouched), or in a restore
whose variables, optimizer state and metadata equal what NumPy's own reader finds in the
file. Anything else (another exception, a value that differs, a MemoryError) is an escape.
"""
import io
import json
import os
import struct
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigraph as mg
from minigraph import ops
from minigraph.train_metadata import check as check_train_metadata

from fuzzing import budget, expect_minigraph_error, record

AREA = "checkpoint files"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


def build():
    with mg.Graph() as g:
        x = mg.placeholder((None, 4), name="x")
        y = mg.placeholder((None,), "int64", name="y")
        with mg.name_scope("dense"):
            w = mg.variable(np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3), name="w")
            b = mg.variable(np.zeros(3, "float32"), name="b")
        train = mg.optim.Adam(0.01).minimize(ops.softmax_cross_entropy(ops.matmul(x, w) + b, y))
    return g, x, y, train


def good_checkpoint():
    g, x, y, train = build()
    sess = mg.Session(g, seed=3)
    sess.run(train, {x: np.ones((2, 4), "float32"), y: np.array([0, 2])})
    folder = tempfile.mkdtemp(prefix="mg-fuzz-")
    path = mg.save(sess, os.path.join(folder, "good.npz"), metadata={"epoch": 1, "note": "fuzz"})
    with open(path, "rb") as f:
        return f.read()


GOOD = good_checkpoint()
with zipfile.ZipFile(io.BytesIO(GOOD)) as _z:
    MEMBERS = {info.filename: _z.read(info) for info in _z.infolist()}


def zip_of(members, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def npy_raw(header: str, data: bytes) -> bytes:
    text = header.encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


DESCR = st.sampled_from(["<f4", "<f8", ">f4", "<i8", "<i4", "|u1", "|b1", "<U5", "|O", "<c8", "|V4", "<M8[s]",
                         "<f2", "[('a', '<f4')]", "'<f4'", "1", "<U0"])
SHAPE = st.one_of(st.tuples(st.integers(-2, 13), st.integers(-2, 13)).map(str), st.just("(4, 3)"),
                  st.just("(3,)"), st.just("()"), st.just("(10**12,)"), st.just("(1000000000000,)"),
                  st.just("(0, 1000000000000000000000)"), st.just("[4, 3]"), st.just("(4, 3"))
HEADER = st.one_of(
    st.builds(lambda d, s, f: f"{{'descr': '{d}', 'fortran_order': {f}, 'shape': {s}, }}".replace("''", "'"),
              DESCR, SHAPE, st.sampled_from(["False", "True", "1", "None"])),
    st.text(st.characters(max_codepoint=255), max_size=40),
    st.just("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)L, '''"))
JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)


@st.composite
def damaged(draw):
    """The bytes of a damaged checkpoint, and what was done to it."""
    kind = draw(st.sampled_from(["flip", "cut", "insert", "directory", "member", "drop", "double", "extra",
                                 "metadata", "deflate"]))
    names = sorted(MEMBERS)
    if kind == "flip":
        blob = bytearray(GOOD)
        for _ in range(draw(st.integers(1, 4))):
            blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
        return bytes(blob), kind
    if kind == "cut":
        return GOOD[:draw(st.integers(0, len(GOOD) - 1))], kind
    if kind == "insert":
        at = draw(st.integers(0, len(GOOD)))
        return GOOD[:at] + draw(st.binary(min_size=1, max_size=64)) + GOOD[at:], kind
    if kind == "directory":  # a field of a central directory entry set to a random value
        blob = bytearray(GOOD)
        starts = [i for i in range(len(blob) - 4) if blob[i:i + 4] == b"PK\x01\x02"]
        start = draw(st.sampled_from(starts))
        offset, width = draw(st.sampled_from([(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (42, 4)]))
        value = draw(st.sampled_from([0, 1, 8, 12, 2 ** (8 * width) - 1, 99, 1 << 30])
                     .filter(lambda v: v < 256 ** width))
        blob[start + offset:start + offset + width] = value.to_bytes(width, "little")
        return bytes(blob), f"{kind}+{offset}"
    members = list(MEMBERS.items())
    if kind == "member":
        name = draw(st.sampled_from(names))
        body = npy_raw(draw(HEADER), draw(st.binary(max_size=64)) if draw(st.booleans()) else bytes(48))
        return zip_of([(n, body if n == name else d) for n, d in members]), f"{kind} {name}"
    if kind == "drop":
        name = draw(st.sampled_from(names))
        return zip_of([(n, d) for n, d in members if n != name]), f"{kind} {name}"
    if kind == "double":
        name = draw(st.sampled_from(names))
        return zip_of(members + [(name, MEMBERS[name])]), f"{kind} {name}"
    if kind == "extra":
        name = draw(st.sampled_from(["state/Adam/x.npy", "variables/zz.npy", "meta/other.npy", "x.npy", "x.txt"]))
        return zip_of(members + [(name, MEMBERS["variables/dense/b.npy"])]), f"{kind} {name}"
    if kind == "metadata":
        buf = io.BytesIO()
        text = draw(st.one_of(JSON.map(json.dumps), st.text(max_size=20)))
        np.lib.format.write_array(buf, np.array(text))
        return zip_of([(n, buf.getvalue() if n == "meta/user.npy" else d) for n, d in members]), kind
    return zip_of(members, zipfile.ZIP_DEFLATED), kind  # an honest compressed copy


def numpy_reads(path):
    """What NumPy's own reader finds in the file (the reference), or None when it refuses."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception:  # noqa: BLE001 - any refusal of NumPy's
        return None


@budget(120)
@given(case=damaged())
def test_damaged_checkpoint_is_refused_or_restored_exactly(tmp_path_factory, case):
    blob, what = case
    path = str(tmp_path_factory.mktemp("ckpt") / "c.npz")
    with open(path, "wb") as f:
        f.write(blob)
    g = build()[0]
    sess = mg.Session(g)
    before = {v.name: sess.get_value(v) for v in sess.variables}
    try:
        meta = mg.restore(sess, path)
    except Exception as exc:  # noqa: BLE001 - the oracle judges every exception
        expect_minigraph_error(AREA, exc, path)
        assert isinstance(exc, mg.CheckpointError), what
        for v in sess.variables:
            np.testing.assert_array_equal(sess.get_value(v), before[v.name])
        assert sess.state == {}
        return
    ref = numpy_reads(path)
    assert ref is not None, f"{what}: restored a file NumPy cannot read"
    for v in sess.variables:
        np.testing.assert_array_equal(sess.get_value(v), ref["variables/" + v.name])
    assert sorted(sess.state) == sorted(k[len("state/"):] for k in ref if k.startswith("state/"))
    for key, value in sess.state.items():
        np.testing.assert_array_equal(value, ref["state/" + key])
    assert meta == (json.loads(str(ref["meta/user"])) if "meta/user" in ref else {})
    assert mg.checkpoint.read_metadata(path) == meta
    record(AREA, "result")


TRAIN_META = st.fixed_dictionaries({
    "config": st.one_of(JSON, st.fixed_dictionaries({
        "batch_size": st.one_of(st.just(32), JSON), "lr": st.one_of(st.just(0.003), JSON),
        "optimizer": st.sampled_from(["adam", "sgd", "rmsprop"]), "seed": st.one_of(st.just(0), JSON),
        "train_limit": st.one_of(st.none(), st.just(96), JSON), "epochs": st.one_of(st.just(2), JSON)})),
    "epoch": st.one_of(st.integers(-1, 3), JSON), "batch": st.one_of(st.integers(-1, 4), JSON),
    "partial": st.one_of(st.just({"loss_sum": 0.5, "correct": 3, "seen": 4, "seconds": 0.1}), JSON),
    "history": st.one_of(st.just([]), st.lists(st.fixed_dictionaries({
        "epoch": st.integers(0, 3), "train_loss": st.floats(), "train_accuracy": st.floats(0, 1),
        "test_accuracy": st.floats(0, 1), "seconds": st.floats(0, 9)}), max_size=2), JSON),
    "step_losses": st.one_of(st.lists(st.floats(), max_size=3), JSON),
})


@budget(120)
@given(meta=st.one_of(TRAIN_META, JSON))
def test_train_metadata_is_accepted_only_when_every_field_is_sound(meta):
    """`minigraph train --resume`'s check of the metadata: a CheckpointError naming the file,
    or the metadata itself, in which case an independent reading of its rules must agree."""
    try:
        out = check_train_metadata(meta, "ckpt.npz", batches_per_epoch=3)
    except Exception as exc:  # noqa: BLE001
        expect_minigraph_error(AREA, exc, "ckpt.npz")
        return
    assert out is meta
    cfg = meta["config"]

    def integer(v, low):
        return type(v) is int and v >= low
    assert integer(cfg["batch_size"], 1) and integer(cfg["seed"], 0) and integer(cfg["epochs"], 1)
    assert cfg["optimizer"] in ("adam", "sgd") and type(cfg["lr"]) in (int, float) and 0 < cfg["lr"] < float("inf")
    assert cfg["train_limit"] is None or integer(cfg["train_limit"], 1)
    assert integer(meta["epoch"], 0) and integer(meta["batch"], 0) and meta["batch"] <= 3
    assert len(meta["history"]) == meta["epoch"]
    assert [r["epoch"] for r in meta["history"]] == list(range(1, meta["epoch"] + 1))
    assert all(np.isfinite(r["train_loss"]) for r in meta["history"])
    assert all(type(v) in (int, float) and np.isfinite(v) for v in meta["step_losses"])
    record(AREA, "result")
