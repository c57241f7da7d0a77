"""After `pip install minigraph` without extras: `minigraph demo` and `minigraph train` work.

Each command runs in a fresh interpreter in which scikit-learn, SciPy, matplotlib, Pillow,
pdoc, CuPy and torch cannot be imported (the `plain_install` fixture). A real install into
a new venv is `make pip-check`.
"""
import os


def listed_files(stdout):
    return [line.split()[-1] for line in stdout.splitlines() if line.startswith("  ") and os.sep in line]


def test_train_without_extras(tmp_path, plain_install):
    done = plain_install(["train", "--epochs", "2", "--train-limit", "64", "--out", "run"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    note = "note: matplotlib is not installed: pip install 'minigraph[plot]' to get the loss curves (loss.png)"
    assert done.stdout.count(note) == 1  # said once, not once per epoch
    files = listed_files(done.stdout)
    assert [os.path.basename(f) for f in files] == ["checkpoint.npz", "model.npz", "metrics.json"]
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz", "metrics.json", "model.npz"]
    assert "\r" not in done.stdout + done.stderr
    # the model file is evaluated without matplotlib (no picture, said once) and Pillow is only
    # needed for image files
    done = plain_install(["evaluate", "run/model.npz", "--no-progress"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "accuracy 0." in done.stdout and "confusion.png" not in done.stdout + done.stderr
    assert (done.stdout + done.stderr).count("to get the confusion-matrix picture") == 1
    (tmp_path / "x.png").write_bytes(b"")
    done = plain_install(["predict", "run/model.npz", "x.png"], cwd=tmp_path)
    assert done.returncode == 2 and "needs Pillow: pip install 'minigraph[images]'" in done.stderr


def test_demo_without_extras(tmp_path, plain_install):
    done = plain_install(["demo", "--epochs", "1", "--out", "demo"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "final test accuracy" in done.stdout and "inception_5b" in done.stdout
    files = listed_files(done.stdout)
    assert len(files) == 5 and not any(f.endswith(".png") for f in files)
    for f in files:
        assert os.path.getsize(tmp_path / f) > 0
    assert done.stdout.count("matplotlib is not installed") == 1
