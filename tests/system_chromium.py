"""Debian's Chromium for the browser tests: its path, or a skip that says how to get it.

CI runs ``.ci/install_chromium.sh`` and sets ``FMTEACH_REQUIRE_CHROMIUM=1``: there a missing browser
(or a missing Playwright) fails the test instead of skipping it.
"""

import os
import shutil

import pytest

REQUIRE_CHROMIUM = "FMTEACH_REQUIRE_CHROMIUM"


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE_CHROMIUM):
        pytest.fail(f"{REQUIRE_CHROMIUM} is set but {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    """The system Chromium's path (Playwright's own browser download needs the network)."""
    path = shutil.which("chromium")
    if not path:
        skip_or_fail("chromium is not installed (.ci/install_chromium.sh installs it)")
    return path
