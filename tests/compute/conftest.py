import pytest

from tests.compute.helpers import Cloud


@pytest.fixture
def cloud(db) -> Cloud:
    return Cloud()
