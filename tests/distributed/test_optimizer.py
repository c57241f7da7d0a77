"""DistributedOptimizer on 2 real ranks against the plain optimizer in one process: same
global batches (69 examples: batches of 32, 32 and a short 5 split 3 + 2), float64,
dropout on. Weights within 1e-12 relative, the two ranks bitwise equal, the same masks."""
import json

import numpy as np
import pytest


def load(out, rank):
    with np.load(out / f"rank{rank}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((out / f"rank{rank}.json").read_text())


@pytest.mark.parametrize("optimizer,bucket_bytes,examples", [("sgd", 20000, 69), ("adam", 1 << 22, 65)])
def test_two_ranks_match_one_rank(mpirun, tmp_path, optimizer, bucket_bytes, examples):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    ref = mpirun(1, "equivalence", one, examples, optimizer, bucket_bytes, "--plain")
    run = mpirun(2, "equivalence", two, examples, optimizer, bucket_bytes)
    assert ref.returncode == 0 and run.returncode == 0, ref.output + run.output
    (w1, j1), (a0, j0), (a1, jr1) = load(one, 0), load(two, 0), load(two, 1)
    weights = [k for k in w1 if k.startswith("w/")]
    assert len(weights) == 28  # mini_inception's 14 weights and 14 biases
    for k in weights:
        assert a0[k].tobytes() == a1[k].tobytes(), f"ranks differ on {k}"
        assert not np.array_equal(a0[k], np.load(one / "rank0.npz")[k] * 0)  # trained, not zero
        scale = np.max(np.abs(w1[k]))
        np.testing.assert_allclose(a0[k], w1[k], rtol=0, atol=1e-12 * scale, err_msg=k)
    # every step's dropout mask: rank 0's rows then rank 1's are the 1-rank run's rows
    steps = len(j1["losses"])
    assert steps == 6
    for i in range(steps):
        np.testing.assert_array_equal(np.concatenate([a0[f"mask/{i}"], a1[f"mask/{i}"]]), w1[f"mask/{i}"])
    last = examples - 64  # the short last batch of each epoch
    expected = [0.5, 0.5, ((last + 1) // 2) / last]
    assert j0["shares"] == expected * 2 and jr1["shares"][:2] == [0.5, 0.5]
    assert j0["buckets"] == jr1["buckets"] and sum(j0["buckets"]) == 28
    if bucket_bytes == 20000:
        assert len(j0["buckets"]) > 1  # several allreduces per step
    else:
        assert j0["buckets"] == [28]
