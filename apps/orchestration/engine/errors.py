"""Typed template errors whose messages read like Heat's (``heat.common.exception``)."""
from __future__ import annotations


class TemplateError(Exception):
    """Base of every error the template engine raises; ``str()`` is the message the API shows."""

    msg_fmt = "%(message)s"

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        super().__init__(self.msg_fmt % kwargs)

    @property
    def message(self) -> str:
        return str(self)


class InvalidTemplateFormat(TemplateError):
    """The text is not a JSON object or YAML mapping (or is not valid JSON/YAML at all)."""


class InvalidTemplateVersion(TemplateError):
    msg_fmt = "The template version is invalid: %(explanation)s"


class InvalidTemplateSection(TemplateError):
    msg_fmt = "The template section is invalid: %(section)s"


class InvalidTemplateReference(TemplateError):
    msg_fmt = 'The specified reference "%(resource)s" (in %(key)s) is incorrect.'


class RequestLimitExceeded(TemplateError):
    msg_fmt = "Request limit exceeded: %(message)s"


class StackValidationFailed(TemplateError):
    """Anything wrong with the template's content or the values given for it."""


class UserParameterMissing(StackValidationFailed):
    msg_fmt = "The Parameter (%(key)s) was not provided."


class UnknownUserParameter(StackValidationFailed):
    msg_fmt = "The Parameter (%(key)s) was not defined in template."


class InvalidParameterValue(StackValidationFailed):
    msg_fmt = "Parameter '%(name)s' is invalid: %(reason)s"


class InvalidEnvironment(StackValidationFailed):
    """An environment file that Heat would refuse."""


class CircularDependency(TemplateError):
    msg_fmt = "Circular Dependency Found: %(cycle)s"


class FunctionError(StackValidationFailed):
    """An intrinsic function called with the wrong arguments, or failing when resolved."""


def failed(message: str) -> StackValidationFailed:
    return StackValidationFailed(message=message)
