"""Domain errors raised by services; each API renders them in its own OpenStack format. An error is
its HTTP status; its title is that status's reason phrase (``TITLES``, the one table of them)."""
from __future__ import annotations

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

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


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
