"""A rank that raises, dies or hangs in the middle of training: the job ends with a clear
error, never waits forever (deadline MINIGRAPH_DIST_TIMEOUT, 4 s here)."""
import pytest

FAST = {"MINIGRAPH_DIST_TIMEOUT": "4"}


@pytest.mark.parametrize("how,message", [
    ("raise", "error on rank 1 of 2: injected failure at step 2; aborting all ranks"),
    ("kill", "signal 9"),
    ("hang", "on rank 0 of 2 did not complete within 4 s"),
])
def test_a_failing_rank_ends_the_job(mpirun, tmp_path, how, message):
    run = mpirun(2, "fit", tmp_path, "--fail", 1, 2, how, env=FAST, timeout=100)
    assert run.returncode != 0
    assert message in run.output, run.output
    assert run.seconds < 60  # the hanging rank sleeps 120 s: it was ended
