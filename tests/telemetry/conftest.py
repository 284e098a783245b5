import pytest


@pytest.fixture
def cloud_api() -> str:
    return "metric"
