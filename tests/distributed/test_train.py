"""`mpirun -n 2 minigraph train --distributed` and `fit(distributed=True)` on real ranks:
files from rank 0 only, the losses and accuracies of a 1-rank run, resume across rank
counts, a Ctrl-C on one rank stopping both at the same step."""
import json
import os
import sys

import numpy as np

TINY = ["--train-limit", "96", "--batch-size", "32", "--no-progress", "--seed", "2"]


def train(mpirun, n, out, *args):
    """`minigraph train` on n ranks (n=0: a plain process, no --distributed)."""
    cmd = [sys.executable, "-m", "minigraph", "train", "--out", str(out), *TINY, *args]
    run = mpirun(max(n, 1), *cmd, *(["--distributed"] if n else []), script=None)
    assert run.returncode == 0, run.output
    return run, json.loads((out / "metrics.json").read_text())


def close(a, b):
    """float32 training: the two summation orders differ in the last bits only."""
    np.testing.assert_allclose(a["step_losses"], b["step_losses"], rtol=2e-5)
    assert [e["test_accuracy"] for e in a["epochs"]] == [e["test_accuracy"] for e in b["epochs"]]


def test_two_ranks_train_like_one_and_resume_on_the_other_count(mpirun, tmp_path):
    """Epoch 1 on 1 rank and on 2 ranks agree; each then resumes on the other rank count."""
    one, two = tmp_path / "one", tmp_path / "two"
    _, m1 = train(mpirun, 0, one, "--epochs", "1")
    run, m2 = train(mpirun, 2, two, "--epochs", "1")
    assert sorted(os.listdir(two)) == sorted(os.listdir(one))  # checkpoint, metrics, plot, model: once
    assert run.stdout.count("final test accuracy") == 1 and run.stdout.count("epoch 1/1") == 1  # rank 0 only
    assert "data-parallel over 2 ranks (mpi): 16 of each batch of 32 per rank" in run.stdout
    assert len(m2["step_losses"]) == 3 and m2["config"]["distributed"] is True
    close(m2, m1)
    assert m2["step_losses"] != m1["step_losses"]  # not bitwise: another summation order

    _, one_then_two = train(mpirun, 2, one, "--epochs", "2", "--resume")
    _, two_then_one = train(mpirun, 0, two, "--epochs", "2", "--resume")
    assert one_then_two["step_losses"][:3] == m1["step_losses"]  # the saved history, bit for bit
    assert len(one_then_two["step_losses"]) == len(two_then_one["step_losses"]) == 6
    close(one_then_two, two_then_one)


def test_ctrl_c_on_one_rank_stops_all_at_the_same_step(mpirun, tmp_path):
    out = tmp_path / "run"
    run = mpirun(2, "fit", out, "--fail", 1, 1, "sigint")  # seen by all at the next step
    assert run.returncode != 0
    assert "rank 0: interrupted" in run.stdout and "rank 1: interrupted" in run.stdout
    assert "checkpoint saved" in run.output and "epoch 1, batch 2" in run.output
    partial = json.loads((out / "metrics.json").read_text())
    assert len(partial["step_losses"]) == 2 and partial["epochs"] == []  # both stopped after step 2
    resumed = mpirun(2, "fit", out, "--resume")
    assert resumed.returncode == 0, resumed.output
    full = json.loads((out / "metrics.json").read_text())
    assert len(full["step_losses"]) == 3 and full["step_losses"][:2] == partial["step_losses"]
    straight = mpirun(2, "fit", tmp_path / "straight")  # the same run without the Ctrl-C: resumed exactly
    assert straight.returncode == 0, straight.output
    assert json.loads((tmp_path / "straight" / "metrics.json").read_text())["step_losses"] == full["step_losses"]


def test_batch_not_divisible_by_ranks_is_a_clear_error(mpirun, tmp_path):
    cmd = [sys.executable, "-m", "minigraph", "train", "--out", str(tmp_path), "--distributed",
           "--train-limit", "96", "--batch-size", "33", "--no-progress"]
    run = mpirun(2, *cmd, script=None)
    assert run.returncode != 0
    assert "the batch size 33 is not divisible by the 2 ranks" in run.stderr
    assert not os.path.exists(tmp_path / "metrics.json")
