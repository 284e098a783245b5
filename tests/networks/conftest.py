import pytest


@pytest.fixture
def cloud_api() -> str:
    return "network"
