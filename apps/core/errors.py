"""Domain errors raised by services; each API renders them in its own OpenStack format. An error is
its HTTP status; its title is that status's reason phrase (``TITLES``, the one table of them)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def status_title(status: int) -> str:
    return TITLES.get(status, "Error")


class StratusError(Exception):
    status = 400

    @property
    def title(self) -> str:
        return status_title(self.status)

    def __init__(self, message: str, *, names: Mapping[str, str] | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.names = dict(names or {})
        self.extra = extra

    @property
    def shown(self) -> str:
        """What a person is told (the dashboard, the admin console): the message with each id in
        ``names`` replaced by that thing's name. The APIs keep the message as the OpenStack services
        word it, ids and all."""
        text = self.message
        for row_id, name in self.names.items():
            text = text.replace(row_id, name)
        return text


def named(*rows: Any) -> dict[str, str]:
    """``names=`` for an error about ``rows`` (each with an ``id`` and a ``name``): those that have a name."""
    return {str(row.id): row.name for row in rows if row is not None and getattr(row, "name", "")}


class BadRequest(StratusError):
    status = 400


class Unauthorized(StratusError):
    status = 401


class Forbidden(StratusError):
    status = 403


class NotFound(StratusError):
    status = 404


class Conflict(StratusError):
    status = 409


class QuotaExceeded(StratusError):
    """A reservation would go over a project's limit. 409 unless an API says 413."""

    status = 409

    def __init__(self, message: str, *, resource: str, limit: int, in_use: int, requested: int) -> None:
        super().__init__(message, resource=resource, limit=limit, in_use=in_use, requested=requested)
        self.resource = resource
        self.limit = limit
        self.in_use = in_use
        self.requested = requested
