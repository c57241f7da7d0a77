"""`minigraph train`: files it writes, bitwise determinism, Ctrl-C and exact resume.

Runs are tiny (`--train-limit`: a few batches per epoch) so the file takes seconds.
"""
import json
import os
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


@pytest.mark.parametrize("flag,value", [("--epochs", "0"), ("--batch-size", "-3"), ("--lr", "0")])
def test_bad_settings_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", flag, value])
    assert exit_info.value.code == 2 and "must be a positive" in capsys.readouterr().err


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
