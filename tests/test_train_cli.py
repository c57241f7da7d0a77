"""`minigraph train`: files it writes, bitwise determinism, Ctrl-C and exact resume.

Runs are tiny (`--train-limit`: a few batches per epoch) so the file takes seconds.
"""
import json
import os
import re
import signal

import numpy as np
import pytest

from minigraph import cli
from minigraph.train import TrainConfig, fit

TINY = ["--train-limit", "96", "--batch-size", "32", "--no-progress"]


def train(tmp_path, name, *args):
    out = tmp_path / name
    rc = cli.main(["train", "--out", str(out), *TINY, *args])
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else None
    return rc, out, metrics


def test_short_run_writes_checkpoint_metrics_and_plot(tmp_path, capsys):
    rc, out, metrics = train(tmp_path, "run", "--epochs", "2")
    assert rc == 0
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "loss.png", "metrics.json", "model.npz"]
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    for e in metrics["epochs"]:
        assert set(e) == {"epoch", "train_loss", "train_accuracy", "test_accuracy", "seconds"}
        assert 0 <= e["train_accuracy"] <= 1 and 0 <= e["test_accuracy"] <= 1 and e["seconds"] > 0
    assert metrics["test_accuracy"] == metrics["epochs"][-1]["test_accuracy"]
    assert len(metrics["step_losses"]) == 2 * 3  # 96 images in batches of 32
    # each epoch's loss is the mean of its batch losses (equal batch sizes here)
    assert metrics["epochs"][0]["train_loss"] == pytest.approx(np.mean(metrics["step_losses"][:3]))
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed and str(out / "metrics.json") in printed


def test_same_seed_same_losses_bitwise(tmp_path):
    _, _, a = train(tmp_path, "a", "--epochs", "2", "--seed", "3")
    _, _, b = train(tmp_path, "b", "--epochs", "2", "--seed", "3")
    _, _, c = train(tmp_path, "c", "--epochs", "2", "--seed", "4")
    assert a["step_losses"] == b["step_losses"]  # JSON keeps floats exactly: bitwise equal
    assert [e["test_accuracy"] for e in a["epochs"]] == [e["test_accuracy"] for e in b["epochs"]]
    assert a["step_losses"] != c["step_losses"]


def test_resume_extends_a_run_exactly(tmp_path):
    _, _, straight = train(tmp_path, "straight", "--epochs", "3", "--optimizer", "sgd", "--lr", "0.05")
    train(tmp_path, "resumed", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.05")
    rc, _, resumed = train(tmp_path, "resumed", "--epochs", "3", "--resume")  # the rest from the checkpoint
    assert rc == 0
    assert resumed["step_losses"] == straight["step_losses"]
    assert resumed["epochs"][-1]["test_accuracy"] == straight["epochs"][-1]["test_accuracy"]


def test_ctrl_c_saves_and_resume_continues_mid_epoch(tmp_path):
    config = TrainConfig(epochs=2, batch_size=32, train_limit=96, out=str(tmp_path / "run"))
    straight = fit(TrainConfig(**{**config.__dict__, "out": str(tmp_path / "straight")}), progress=False,
                   log=lambda s: None)

    def press_ctrl_c(step, loss):
        if step == 4:  # the middle of the second epoch
            signal.raise_signal(signal.SIGINT)
    messages = []
    with pytest.raises(KeyboardInterrupt):
        fit(config, progress=False, log=messages.append, on_step=press_ctrl_c)
    assert "checkpoint saved" in messages[-1] and "batch 1" in messages[-1]
    partial = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(partial["epochs"]) == 1 and partial["step_losses"] == straight["step_losses"][:4]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back

    rc = cli.main(["train", "--out", str(tmp_path / "run"), "--resume", "--no-progress"])
    assert rc == 0
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert resumed["step_losses"] == straight["step_losses"]
    assert [e["train_loss"] for e in resumed["epochs"]] == [e["train_loss"] for e in straight["epochs"]]


def test_resume_errors(tmp_path, capsys):
    rc = cli.main(["train", "--out", str(tmp_path / "none"), "--resume", *TINY])
    assert rc == 2 and "no checkpoint at" in capsys.readouterr().err
    train(tmp_path, "run", "--epochs", "1")
    rc = cli.main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2", "--batch-size", "16"])
    err = capsys.readouterr().err
    assert rc == 2 and "--batch-size 32 (now 16)" in err


def test_help_lists_train_and_demo(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "train" in text and "demo" in text


def test_demo_writes_and_lists_every_file(tmp_path, capsys):
    rc = cli.main(["demo", "--out", str(tmp_path), "--epochs", "1", "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "inception_5b" in printed and "total" in printed  # the GoogLeNet summary
    listed = [line.split()[-1] for line in printed.splitlines() if line.startswith("  ") and str(tmp_path) in line]
    assert len(listed) == 6 + 11  # diagrams, training files and model, then the pictures of `minigraph visualize`
    for path in listed:
        assert os.path.getsize(path) > 0
    assert any(p.endswith("googlenet.svg") or p.endswith("googlenet.gv") for p in listed)


@pytest.mark.parametrize("flag,value,message", [
    ("--epochs", "0", "must be a positive integer"), ("--batch-size", "-3", "must be a positive integer"),
    ("--lr", "0", "must be a positive finite number"), ("--lr", "inf", "must be a positive finite number"),
    ("--lr", "nan", "must be a positive finite number"),
    ("--seed", "-1", "must be a non-negative integer")])  # main: a ValueError traceback from NumPy
def test_bad_settings_are_usage_errors(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", flag, value])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_train_on_cupy_backend_or_explain_why_not(tmp_path, capsys):
    """With CuPy and a GPU the run trains there; without, it stops with the backend's reason."""
    from minigraph.backend import unavailable_reason
    reason = unavailable_reason("cupy")
    rc, out, metrics = train(tmp_path, "gpu", "--backend", "cupy", "--epochs", "1")
    if reason is None:
        assert rc == 0 and metrics["config"]["backend"] == "cupy" and len(metrics["epochs"]) == 1
    else:
        assert rc == 2 and reason in capsys.readouterr().err and metrics is None


# -- without matplotlib, in a log, on your own images -----------------------------------------

def test_without_matplotlib_the_plot_is_not_listed_and_the_note_comes_once(tmp_path, capsys, without_modules):
    without_modules("matplotlib")
    out = tmp_path / "run"
    out.mkdir()
    (out / "loss.png").write_bytes(b"an old plot")
    rc, out, metrics = train(tmp_path, "run", "--epochs", "2")
    printed = capsys.readouterr().out
    assert rc == 0 and printed.count("matplotlib is not installed") == 1
    assert f"{out / 'loss.png'} is from an earlier run" in printed
    assert "  loss curves" not in printed and str(out / "checkpoint.npz") in printed
    assert (out / "loss.png").read_bytes() == b"an old plot"


def test_progress_in_a_log_has_no_carriage_returns(tmp_path, capsys):
    rc = cli.main(["train", "--out", str(tmp_path / "log"), "--train-limit", "96", "--epochs", "1"])
    captured = capsys.readouterr()
    assert rc == 0 and "\r" not in captured.out + captured.err and "epoch 1/1" in captured.out


def colour_folder(root, per_class=24, size=12, seed=0):
    """Three classes that differ by their dominant colour, each image noisy."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for k, name in enumerate(("red", "green", "blue")):
        os.makedirs(root / name)
        for i in range(per_class):
            arr = rng.integers(0, 90, (size, size, 3))
            arr[..., k] += 160
            Image.fromarray(arr.astype(np.uint8)).save(root / name / f"{i}.png")


def test_train_on_an_image_folder_learns_and_resumes(tmp_path, capsys):
    pytest.importorskip("PIL")
    colour_folder(tmp_path / "images")
    args = ["--data", str(tmp_path / "images"), "--image-size", "12", "--batch-size", "16", "--no-progress"]
    rc = cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "3", *args])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rc == 0 and metrics["test_accuracy"] >= 0.9  # 15 test images; chance is 1/3
    cfg = metrics["config"]
    assert (cfg["data"], cfg["model"], cfg["image_size"], cfg["channels"], cfg["augment"]) == \
        (str(tmp_path / "images"), "mini_inception", 12, 3, "crop+flip")
    assert len(metrics["step_losses"]) == 3 * 4  # 57 training images in batches of 16
    rc = cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "4", "--resume", "--no-progress"])
    assert rc == 0 and len(json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]) == 4
    capsys.readouterr()
    rc = cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "5", "--resume", "--augment", "none"])
    assert rc == 2 and "--augment crop+flip (now none)" in capsys.readouterr().err


def test_train_on_cifar10_binary_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        recs = np.concatenate([rng.integers(0, 10, (8, 1)), rng.integers(0, 256, (8, 3072))], axis=1)
        (folder / name).write_bytes(recs.astype(np.uint8).tobytes())
    rc, out, metrics = train(tmp_path, "cifar", "--data", str(tmp_path), "--epochs", "1")
    assert rc == 0 and len(metrics["step_losses"]) == 2  # 40 images: 32 + 8 (train-limit 96)
    rc = cli.main(["train", "--out", str(tmp_path / "x"), "--data", str(tmp_path), "--image-size", "64"])
    assert rc == 2 and "is CIFAR-10: its images are 3 x 32 x 32" in capsys.readouterr().err


def test_googlenet_needs_its_input_size(tmp_path, capsys):
    pytest.importorskip("PIL")
    colour_folder(tmp_path / "images", per_class=3)
    rc = cli.main(["train", "--out", str(tmp_path / "g"), "--data", str(tmp_path / "images"), "--model", "googlenet"])
    assert rc == 2 and "googlenet needs 3 x 224 x 224 images (--image-size 224 --channels 3), got 3 x 32 x 32" \
        in capsys.readouterr().err


# ---------------------------------------------------------------------------------
# divergence, damaged checkpoints, file modes, a full disk


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings on the way to NaN
def test_check_numerics_names_the_first_op_that_overflows(tmp_path, capsys):
    """--check-numerics stops at the first op whose output is not finite, before the loss is."""
    out = tmp_path / "run"
    with np.errstate(all="ignore"):
        rc = cli.main(["train", "--out", str(out), "--batch-size", "32", "--no-progress", "--epochs", "1",
                       "--lr", "10", "--optimizer", "sgd", "--check-numerics"])
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(r"minigraph: error: \w+ '[\w/]+' produced NaN or Inf \(shape \(32, ", err), err
    assert "its inputs:" in err and not (out / "checkpoint.npz").exists()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the clear message only, no NumPy overflow warnings
def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """SGD at lr 1 on this tiny run: epoch 1 is finite, epoch 2 reaches a NaN loss (main printed
    `loss nan`, exited 0 and saved NaN weights)."""
    import minigraph as mg
    from minigraph.train import build_digits_model
    out = tmp_path / "run"
    rc = cli.main(["train", "--out", str(out), *TINY, "--epochs", "3", "--lr", "1", "--optimizer", "sgd"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("minigraph: error: training diverged at epoch 2, batch ")
    assert "the loss is nan" in err and f"{out / 'checkpoint.npz'} keeps the last good state (after epoch 1)" in err
    assert "--lr 1 with sgd" in err
    meta = mg.checkpoint.read_metadata(out / "checkpoint.npz")
    assert meta["epoch"] == 1 and meta["batch"] == 0 and all(np.isfinite(meta["step_losses"]))
    model = build_digits_model(0)
    with model.loss.graph:
        mg.optim.SGD(mg.optim.learning_rate(1.0), momentum=0.9, nesterov=True).minimize(model.loss)
    sess = mg.Session(model.loss.graph)
    mg.restore(sess, out / "checkpoint.npz")
    assert all(np.isfinite(sess.get_value(v)).all() for v in sess.variables)
    metrics = json.loads((out / "metrics.json").read_text())  # strict JSON: no NaN
    assert len(metrics["epochs"]) == 1


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_divergence_before_any_save_says_nothing_was_written(tmp_path):
    from minigraph import NumericsError
    config = TrainConfig(epochs=1, batch_size=32, lr=10.0, optimizer="sgd", out=str(tmp_path / "run"))
    with pytest.raises(NumericsError, match=r"at epoch 1, batch \d+ of 43: the loss is nan; no checkpoint "
                                            r"was written by this run"):
        fit(config, progress=False, log=lambda s: None)
    assert os.listdir(tmp_path / "run") == []


def rewrite_metadata(path, edit):
    """The checkpoint at `path` with its metadata replaced by edit(metadata) (any JSON value)."""
    import io
    import zipfile
    with zipfile.ZipFile(path) as z:
        contents = {info.filename: z.read(info) for info in z.infolist()}
    meta = json.loads(str(np.load(io.BytesIO(contents["meta/user.npy"]))))
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(json.dumps(edit(meta))))
    contents["meta/user.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in contents.items():
            z.writestr(name, data)


def _set(meta, key, value, inner=None):
    (meta[inner] if inner else meta)[key] = value
    return meta


@pytest.mark.parametrize("edit, message", [
    (lambda m: None, "the metadata must be a JSON object, got null"),           # main: AttributeError
    (lambda m: [m], "the metadata must be a JSON object, got a list"),          # main: AttributeError
    (lambda m: {k: v for k, v in m.items() if k != "config"}, "has no 'config'"),  # main: KeyError
    (lambda m: _set(m, "epoch", "1"), r"metadata\['epoch'\] must be an integer >= 0, got '1'"),  # main: TypeError
    (lambda m: _set(m, "batch_size", "32", "config"),
     r"metadata 'config'\['batch_size'\] must be an integer >= 1, got '32'"),
    (lambda m: _set(m, "config", None), "'config' must be a JSON object, got null"),
    (lambda m: _set(m, "epoch", 5), "'epoch' is 5 but the history holds 1 epochs"),
    (lambda m: _set(m, "batch", 99), "'batch' is 99, but an epoch has 3 batches"),
    (lambda m: _set(m, "partial", {"seen": 3}), "'partial' has no 'loss_sum'"),
    (lambda m: _set(m, "step_losses", [1.0, "x"]), r"'step_losses'\[1\] must be a finite number"),
    (lambda m: _set(m, "augment", "bogus", "config"), r"'config'\['augment'\] must be an augmentation name"),
    (lambda m: _set(m, "model", "resnet", "config"), r"'config'\['model'\] must be a model name"),
])
def test_resume_from_damaged_metadata_is_a_clear_error(tmp_path, capsys, edit, message):
    rc, out, _ = train(tmp_path, "run", "--epochs", "1")
    assert rc == 0
    rewrite_metadata(out / "checkpoint.npz", edit)
    capsys.readouterr()
    rc = cli.main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("minigraph: error: ") and re.search(message, err), err


def test_output_files_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        rc, out, _ = train(tmp_path, "run", "--epochs", "1")
    finally:
        os.umask(old)
    assert rc == 0
    for name in ("checkpoint.npz", "metrics.json", "loss.png"):
        assert os.stat(out / name).st_mode & 0o777 == 0o640, name  # main: 0o600 for the first two


FULL_DISK_RESUME = """
import resource, signal, sys
from minigraph import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))  # no file may grow past 8 KB: a full disk
sys.exit(cli.main(["train", "--out", {out!r}, "--resume", "--epochs", "2", "--no-progress"]))
"""


def test_full_disk_during_training_is_one_line_and_the_checkpoint_stays(tmp_path):
    import subprocess
    import sys
    rc, out, _ = train(tmp_path, "run", "--epochs", "1")
    before = (out / "checkpoint.npz").read_bytes()
    done = subprocess.run([sys.executable, "-c", FULL_DISK_RESUME.format(out=str(out))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # main: an OSError traceback
    assert done.stderr.startswith(f"minigraph: error: cannot write checkpoint {out / 'checkpoint.npz'}: "
                                  "File too large (the previous checkpoint is intact)")
    assert (out / "checkpoint.npz").read_bytes() == before
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "loss.png", "metrics.json", "model.npz"]


@pytest.mark.parametrize("flags, message", [
    (["--lr", "0.01"], "--lr 0.05 (now 0.01)"),
    (["--optimizer", "adam"], "--optimizer sgd (now adam)"),  # once a 30-line list of optimizer state
])
def test_resume_with_other_settings_is_one_line_naming_them(tmp_path, capsys, flags, message):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--out", out, *TINY, "--epochs", "1", "--optimizer", "sgd", "--lr", "0.05"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--out", out, *TINY, "--epochs", "2", "--resume", *flags]) == 2
    err = capsys.readouterr().err
    assert err == (f"minigraph: error: {out}/checkpoint.npz was trained with other settings: {message}; "
                   "resume with the same ones\n")


def test_an_out_folder_that_cannot_be_made_is_named_with_its_flag(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert cli.main(["train", "--out", str(blocker / "run"), *TINY, "--epochs", "1"]) == 1
    assert capsys.readouterr().err == (f"minigraph: error: cannot create the output folder {blocker / 'run'} "
                                       "(--out, TrainConfig.out): Not a directory\n")


@pytest.mark.parametrize("flag", [["--image-size", "32"], ["--channels", "3"]])
def test_image_flags_without_data_are_a_usage_error(tmp_path, capsys, flag):
    """They size --data folders' images; on the digits they were silently ignored."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--out", str(tmp_path / "run"), *TINY, *flag])
    assert stop.value.code == 2
    assert "--image-size and --channels size the images of --data folders" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_callers_numpy_error_setting_is_kept_by_fit(tmp_path):
    """fit silences NumPy's overflow warnings only where NumPy's defaults hold: np.errstate(all="raise")
    set for debugging still raises at the first overflow (a FloatingPointError)."""
    config = TrainConfig(epochs=1, batch_size=32, lr=10.0, optimizer="sgd", out=str(tmp_path / "run"))
    with np.errstate(over="raise", invalid="raise", divide="raise"), pytest.raises(FloatingPointError):
        fit(config, progress=False, log=lambda s: None)
