import pytest

from tests.volumes.helpers import Cloud


@pytest.fixture
def cloud(db) -> Cloud:  # type: ignore[no-untyped-def]
    return Cloud()
