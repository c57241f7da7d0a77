"""minigraph.classifier and `minigraph predict` / `minigraph evaluate`: a classifier file written
by training, predictions on PNG/JPEG files against the model run on the same pixels, accuracy and
confusion matrix against a count by hand, the picture, and clear errors."""
import os

import numpy as np
import pytest
from PIL import Image

import minigraph as mg
from minigraph import classifier, cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`minigraph train` for one short epoch on the digits: its folder."""
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--out", str(out), "--epochs", "1", "--train-limit", "256", "--no-progress"]) == 0
    return out


def _digit_files(folder, images, size=8, fmt="png"):
    """The 8x8 digit images as grayscale files, scaled up `size // 8` times with no smoothing."""
    paths = []
    for i, img in enumerate(images):
        pixels = (img[0] * 255).round().astype("uint8")
        path = folder / f"digit{i}.{fmt}"
        Image.fromarray(pixels, "L").resize((size, size), Image.NEAREST).save(path)
        paths.append(str(path))
    return paths


def test_training_writes_a_classifier_that_loads_without_the_code(trained):
    model = mg.load_model(trained / "model.npz")
    assert list(model.inputs) == ["x"] and set(model.outputs) == {"probs", "logits"}
    assert classifier.classes_of(model) == [str(i) for i in range(10)]
    assert classifier.input_geometry(model) == (1, 8, 8)
    # the same predictions as the checkpoint restored into the model built by code
    data = mg.data.digits()
    from minigraph.train_setup import build_digits_model
    net = build_digits_model(0)
    sess = mg.Session(net.loss.graph)
    mg.restore(sess, trained / "checkpoint.npz")
    want = sess.run(net.probs, {net.x: data.x_test[:50]})
    np.testing.assert_array_equal(model.run({"x": data.x_test[:50]}, "probs"), want)


def test_predict_files_match_the_model_on_the_same_pixels(trained, tmp_path):
    model = mg.load_model(trained / "model.npz")
    data = mg.data.digits()
    images = data.x_test[:6]
    paths = _digit_files(tmp_path, images, size=8)
    tops = classifier.predict_files(model, paths, top_k=3)
    exact = (images * 255).round() / 255                      # what the 8-bit PNGs hold
    probs = model.run({"x": exact.astype("float32")}, "probs")
    for top, row in zip(tops, probs):
        order = np.argsort(-row, kind="stable")[:3]
        assert [name for name, _ in top] == [str(k) for k in order]
        np.testing.assert_allclose([p for _, p in top], row[order], rtol=1e-6)
        assert top[0][1] >= top[1][1] >= top[2][1]


def test_predict_resizes_and_converts_what_it_is_given(trained, tmp_path):
    """A 64x64 RGB JPEG of a digit is converted to grayscale and scaled down to 8x8."""
    model = mg.load_model(trained / "model.npz")
    img = np.zeros((64, 48, 3), "uint8")
    img[8:56, 20:28] = 255                                    # a bright bar, taller than wide
    Image.fromarray(img).save(tmp_path / "bar.jpg")
    x = classifier.load_images(model, [str(tmp_path / "bar.jpg")])
    assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert x[0, 0, :, 3:5].mean() > 0.5 > x[0, 0, :, :2].mean()   # the bar stays in the middle columns


def test_predict_command(trained, tmp_path, capsys):
    data = mg.data.digits()
    paths = _digit_files(tmp_path, data.x_test[:2], size=32)
    assert cli.main(["predict", str(trained / "model.npz"), *paths, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].endswith("10 classes, images as grayscale 8 x 8")
    for line, path in zip(lines[1:], paths):
        name, rest = line.split(": ")
        assert name == path and len(rest.split(", ")) == 2 and rest.endswith("%")


def test_predict_errors_name_the_file(trained, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not an image")
    assert cli.main(["predict", str(trained / "model.npz"), str(tmp_path / "broken.png")]) == 2
    out, err = capsys.readouterr()
    assert "broken.png: cannot decode image" in err
    assert out == ""  # the error alone, not the model's header line before it
    assert cli.main(["predict", str(trained / "checkpoint.npz"), str(tmp_path / "broken.png")]) == 2
    assert "not a minigraph model file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["predict", str(trained / "model.npz"), "x.png", "--top-k", "0"])
    assert "--top-k must be at least 1" in capsys.readouterr().err


def test_evaluate_counts_like_a_loop_and_draws_the_matrix(trained, tmp_path):
    model = mg.load_model(trained / "model.npz")
    data = mg.data.digits()
    result = classifier.evaluate(model, data.x_test, data.y_test, batch_size=100)
    predicted = model.run({"x": data.x_test}, "probs").argmax(axis=1)
    counts = np.zeros((10, 10), int)
    for t, p in zip(data.y_test, predicted):
        counts[t, p] += 1
    np.testing.assert_array_equal(result.confusion, counts)
    assert result.accuracy == pytest.approx(np.mean(predicted == data.y_test))
    np.testing.assert_allclose(result.per_class_accuracy(), np.diag(counts) / counts.sum(axis=1))
    path = classifier.plot_confusion(result, str(tmp_path / "c.png"))
    assert path == str(tmp_path / "c.png") and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_evaluate_command_on_an_image_folder(tmp_path, capsys):
    """Train on an image folder of three classes, then evaluate the model file on it."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(["red", "green", "blue"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 60, (12, 12, 3)).astype("uint8")
            img[..., k] = 200 + rng.integers(0, 50, (12, 12))
            Image.fromarray(img).save(tmp_path / "imgs" / name / f"{i}.png")
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "imgs"), "--image-size", "8", "--epochs", "3",
                     "--out", str(out), "--no-progress", "--augment", "none"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "model.npz"), "--data", str(tmp_path / "imgs"), "--no-progress",
                     "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("accuracy ") and "of 6 test images of" in printed
    assert printed.splitlines()[3].split() == ["blue", "green", "red"]       # the confusion matrix heading
    assert os.path.getsize(tmp_path / "eval" / "confusion.png") > 0
    model = mg.load_model(out / "model.npz")
    assert classifier.classes_of(model) == ["blue", "green", "red"]
    # data of another size than the model takes is refused, naming both
    with pytest.raises(mg.data.DataError, match="the data's images are 1 x 8 x 8, the model takes 3 x 8 x 8"):
        classifier.evaluate(model, np.zeros((2, 1, 8, 8), "float32"), np.zeros(2, int))
    # other classes (or the same in another order) would give a false score: refused
    (tmp_path / "imgs" / "red").rename(tmp_path / "imgs" / "rouge")
    assert cli.main(["evaluate", str(out / "model.npz"), "--data", str(tmp_path / "imgs"), "--no-progress",
                     "--out", str(tmp_path / "eval")]) == 2
    assert "has the classes ['blue', 'green', 'rouge'], but" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a usage error, not a traceback
        cli.main(["evaluate", str(out / "model.npz"), "--batch-size", "0"])
    assert "--batch-size: must be a positive integer, got 0" in capsys.readouterr().err


def test_a_model_that_is_no_classifier_is_refused(tmp_path):
    with mg.Graph() as g:
        x = mg.placeholder((None, 4), name="x")
        y = mg.ops.relu(x)
    model = mg.load_model(mg.save_model(tmp_path / "m.npz", {"x": x}, {"out": y}, mg.Session(g)))
    with pytest.raises(mg.ModelFileError, match="needs an output 'probs' or 'logits'"):
        classifier.classes_of(model)
    with pytest.raises(mg.ModelFileError, match=r"needs an input 'x' of shape \(N, 1 or 3, H, W\)"):
        classifier.input_geometry(model)
