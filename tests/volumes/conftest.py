import pytest

from tests.api_client import SeededCloud
from tests.volumes.helpers import storage_backend


@pytest.fixture
def cloud_api() -> str:
    return "volume"


@pytest.fixture
def cloud(cloud: SeededCloud) -> SeededCloud:
    """The seeded cloud, with one storage backend that reported in."""
    storage_backend()
    return cloud
