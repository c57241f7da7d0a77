"""minigraph/env.py: the one reader of MINIGRAPH_* switches and numbers."""
import pytest

from minigraph import env


@pytest.mark.parametrize("text, on_by_default, off_by_default", [
    (None, True, False), ("", True, False), (" 0 ", False, False), ("OFF", False, False), ("no", False, False),
    ("1", True, True), ("Yes", True, True), ("on", True, True), ("maybe", True, False),
])
def test_switch_keeps_its_default_unless_clearly_set(monkeypatch, text, on_by_default, off_by_default):
    if text is None:
        monkeypatch.delenv("MINIGRAPH_TEST_SWITCH", raising=False)
    else:
        monkeypatch.setenv("MINIGRAPH_TEST_SWITCH", text)
    assert env.switch("MINIGRAPH_TEST_SWITCH", default=True) is on_by_default
    assert env.switch("MINIGRAPH_TEST_SWITCH", default=False) is off_by_default


def test_number_converts_checks_and_names_the_variable(monkeypatch):
    read = lambda: env.number("MINIGRAPH_TEST_N", int, lambda n: n >= 1, "a positive int", default=7)  # noqa: E731
    monkeypatch.delenv("MINIGRAPH_TEST_N", raising=False)
    assert read() == 7
    monkeypatch.setenv("MINIGRAPH_TEST_N", "3")
    assert read() == 3
    for bad in ("0", "two", "1.5"):
        monkeypatch.setenv("MINIGRAPH_TEST_N", bad)
        with pytest.raises(ValueError, match=f"MINIGRAPH_TEST_N must be a positive int, got '{bad}'"):
            read()
