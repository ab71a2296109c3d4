import pytest

from stagerl.rewards.pool import GradingPool


@pytest.fixture(scope="session")
def pool():
    """One small pool for the whole session: starting workers is the slow part of these tests.

    A short limit and retry keep the hang tests quick; honest grades here take milliseconds.
    """
    p = GradingPool(num_workers=2, timeout=1.0, retry_factor=2.0)
    yield p
    p.close()
