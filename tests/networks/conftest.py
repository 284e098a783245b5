import pytest

from tests.networks.helpers import Cloud


@pytest.fixture
def cloud(db) -> Cloud:
    return Cloud()
