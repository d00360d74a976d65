"""Every unit test starts from the same random state, so a test that draws unseeded numbers
(``torch.randn(2, 3)``) sees the same ones whatever ran before it and in whatever order."""

import pytest

from fmteach.seeding import set_seed


@pytest.fixture(autouse=True)
def _same_random_state_for_every_test():
    set_seed(0)
    yield
