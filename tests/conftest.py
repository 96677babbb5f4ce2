import pytest
import fastsample

@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    """Runs a test with one CPU thread and with a team of two (same results expected)."""
    before = fastsample.get_num_threads()
    fastsample.set_num_threads(request.param)
    yield request.param
    fastsample.set_num_threads(before)
