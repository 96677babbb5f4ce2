import pytest


def pytest_collection_modifyitems(config, items):
    # Benchmarks are run on purpose (README's first command), never as part of the test suite.
    for item in items:
        item.add_marker(pytest.mark.benchmark)
