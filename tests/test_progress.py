import pytest

from fmteach.progress import progress_bar, progress_enabled


@pytest.mark.parametrize(("profile", "expected"), [("smoke", False), ("cpu", True), ("gpu", True)])
def test_bars_follow_the_profile(monkeypatch, profile, expected):
    monkeypatch.setenv("FMTEACH_PROFILE", profile)
    assert progress_enabled() is expected
    assert progress_bar(range(3), desc="x").disable is (not expected)


def test_explicit_choice_wins(monkeypatch):
    monkeypatch.setenv("FMTEACH_PROFILE", "smoke")
    assert progress_enabled(True) is True
    monkeypatch.setenv("FMTEACH_PROFILE", "cpu")
    assert progress_enabled(False) is False
    assert list(progress_bar(range(3), enabled=False)) == [0, 1, 2]


def test_bad_choice_is_named():
    with pytest.raises(TypeError, match="enabled"):
        progress_enabled("yes")
