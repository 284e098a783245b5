"""Domain errors raised by services; each API renders them in its own OpenStack format."""
from __future__ import annotations


class StratusError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(StratusError):
    status = 400
    title = "Bad Request"


class Unauthorized(StratusError):
    status = 401
    title = "Unauthorized"


class Forbidden(StratusError):
    status = 403
    title = "Forbidden"


class NotFound(StratusError):
    status = 404
    title = "Not Found"


class Conflict(StratusError):
    status = 409
    title = "Conflict"


class QuotaExceeded(StratusError):
    """A reservation would go over a project's limit. 409 unless an API says 413."""

    status = 409
    title = "Over Quota"

    def __init__(self, message: str, *, resource: str, limit: int, in_use: int, requested: int) -> None:
        super().__init__(message, resource=resource, limit=limit, in_use=in_use, requested=requested)
        self.resource = resource
        self.limit = limit
        self.in_use = in_use
        self.requested = requested
