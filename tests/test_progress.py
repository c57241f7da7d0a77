"""minigraph.progress: tqdm on a terminal, plain periodic lines in a log, nothing when disabled."""
import io

import pytest

from minigraph import progress as progress_module
from minigraph.progress import LineProgress, progress


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_a_log_gets_plain_lines_without_carriage_returns(monkeypatch):
    log = Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setenv("MINIGRAPH_PROGRESS_INTERVAL", "0")
    with progress(total=4, desc="epoch 1/2", unit="batch") as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(4):
            bar.set_postfix(loss="0.5000", refresh=False)
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].startswith("epoch 1/2: 1/4 batch (25%), ") and lines[0].endswith("loss=0.5000")
    assert len(lines) == 5  # one per update, and the final state on close
    assert lines[3].startswith("epoch 1/2: 4/4 batch (100%)") and lines[4].startswith("epoch 1/2: 4/4 batch (100%)")


def test_the_interval_limits_the_lines():
    ticks = iter(range(0, 1000, 10))  # each reading of the clock is 10 s later
    out = io.StringIO()
    bar = LineProgress(total=100, desc="x", unit="it", interval=25, file=out, clock=lambda: next(ticks))  # t=0
    for _ in range(6):
        bar.update(1)  # t = 10, 20, 30 (line), 40, 50, 60 (line)
    bar.close()  # t = 70 (the final line)
    firsts = [line.split(",")[0] for line in out.getvalue().splitlines()]
    assert firsts == ["x: 3/100 it (3%)", "x: 6/100 it (6%)", "x: 6/100 it (6%)"]
    quiet = io.StringIO()
    short = LineProgress(total=3, interval=30, file=quiet)
    short.update(3)
    short.close()
    assert quiet.getvalue() == ""  # a job shorter than the interval prints nothing


def test_a_terminal_gets_tqdm_and_disabled_gets_nothing(monkeypatch):
    term = Stream(tty=True)
    monkeypatch.setattr("sys.stderr", term)
    bar = progress(total=3, desc="d")
    assert not isinstance(bar, LineProgress)
    bar.update(3)
    bar.close()
    assert "3/3" in term.getvalue()
    log = Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    with progress(total=3, enabled=False) as off:
        off.update(3)
    assert log.getvalue() == ""


def test_bad_interval_setting(monkeypatch):
    monkeypatch.setenv("MINIGRAPH_PROGRESS_INTERVAL", "soon")
    with pytest.raises(ValueError, match="MINIGRAPH_PROGRESS_INTERVAL must be a number of seconds"):
        progress_module.line_interval()
    monkeypatch.setenv("MINIGRAPH_PROGRESS_INTERVAL", "-1")
    with pytest.raises(ValueError, match=">= 0"):
        progress_module.line_interval()
