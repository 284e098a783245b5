"""A cloud's REST APIs called in process through openstacksdk's keystoneauth session (the catalog gives the
endpoint): the breadth of an e2e test without a CLI process's second of start-up per call."""
from __future__ import annotations

from typing import Any


def rest(conn: Any, service_type: str, method: str, path: str, *, expect: int | None = None, **kw: Any) -> Any:
    """``method path`` on ``service_type``'s public endpoint as ``conn``'s user: the JSON answer (None when
    empty). A status of 300 or more fails, unless it is ``expect``, then the response itself is returned."""
    response = conn.session.request(path, method, endpoint_filter={"service_type": service_type,
                                                                   "interface": "public"},
                                    raise_exc=False, **kw)
    if expect is not None:
        assert response.status_code == expect, (method, path, response.status_code, response.text[-2000:])
        return response
    assert response.status_code < 300, (method, path, response.status_code, response.text[-2000:])
    return response.json() if response.content else None
