import pytest

from rewards.pool import GradingPool


@pytest.fixture(scope="session")
def pool():
    """One small pool for the whole session: starting workers is the slow part of these tests."""
    p = GradingPool(num_workers=2, timeout=2.0)
    yield p
    p.close()
