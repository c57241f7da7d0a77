"""`minigraph visualize`: the files it writes and lists, their pixel sizes, and its errors."""
import struct

import pytest

import minigraph as mg
from minigraph import cli
from minigraph.train import build_digits_model

EXPECTED = {  # file -> (width, height) in pixels at 100 dpi
    "filters_stem.png": (500, 460),                    # 16 filters, 4 x 4 tiles
    "filters_inception_a_5x5.png": (500, 780),         # 8 filters x 4 input channels
    "feature_maps_stem.png": (740, 440),               # input + 16 channels in 4 x 4 tiles
    "feature_maps_inception_a.png": (980, 600),        # input + 40 channels in 7 x 6 tiles
    "feature_maps_inception_b.png": (1220, 840),       # input + 88 channels in 10 x 9 tiles
    "saliency.png": (1200, 420),
    "smoothgrad.png": (1200, 420),
    "grad_cam_inception_a.png": (1200, 420),
    "grad_cam_inception_b.png": (1200, 420),
    "occlusion.png": (900, 420),
    "translation_invariance.png": (1100, 450),
}


def png_size(path):
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    assert cli.main(["train", "--out", str(out), "--train-limit", "96", "--epochs", "1", "--no-progress"]) == 0
    return out / "checkpoint.npz"


def test_writes_and_lists_every_picture(checkpoint, tmp_path, capsys):
    out = tmp_path / "pictures"
    assert cli.main(["visualize", "--checkpoint", str(checkpoint), "--index", "7", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    listed = [line.split()[-1] for line in printed.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(str(out / name) for name in EXPECTED)
    for name, size in EXPECTED.items():
        assert png_size(out / name) == size, name
    assert "test image 7" in printed


def test_explains_the_predicted_class_unless_told(checkpoint, tmp_path, monkeypatch, capsys):
    """Every explanation gets the predicted class of the image, or --class; nothing else is drawn."""
    data = mg.data.digits()
    model = build_digits_model(0)   # built and restored here by hand, not by the code under test
    sess = mg.Session(model.logits.graph)
    mg.restore(sess, checkpoint)
    predicted = int(sess.run(model.logits, {model.x: data.x_test[3:4]}).argmax())
    asked = []
    for name in ("saliency", "grad_cam", "occlusion"):
        monkeypatch.setattr(mg.viz, name, lambda *args, _name=name, **kw: asked.append((_name, args[4])))
    for name in ("filters", "feature_maps", "translation_invariance"):  # not what this test is about
        monkeypatch.setattr(mg.viz, name, lambda *args, **kw: None)
    for flag, expected in (([], predicted), (["--class", str((predicted + 1) % 10)], (predicted + 1) % 10)):
        asked.clear()
        assert cli.main(["visualize", "--checkpoint", str(checkpoint), "--index", "3", "--out", str(tmp_path), *flag]) == 0
        assert sorted(asked) == [("grad_cam", expected)] * 2 + [("occlusion", expected)] + [("saliency", expected)] * 2
    assert f"digit {data.y_test[3]}, predicted {predicted}" in capsys.readouterr().out


def test_errors(checkpoint, tmp_path, capsys):
    assert cli.main(["visualize", "--checkpoint", str(checkpoint), "--index", "449", "--out", str(tmp_path)]) == 2
    assert "--index 449 is outside the test set of 449 images (0..448)" in capsys.readouterr().err
    assert cli.main(["visualize", "--checkpoint", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["visualize", "--class", "10"])
