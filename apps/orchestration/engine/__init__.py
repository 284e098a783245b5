"""Stratus's Heat template engine: pure Python, no Django (see ../shared/DESIGN.md on libraries).

    tmpl = Template.parse(text, files=files)          # safe parse, version, limits, section shapes
    tmpl.validate()                                    # functions per version, references, cycles
    stack = tmpl.stack(parameters=..., environment=parse_environment(env_texts), context=StackContext(...))
    stack.levels(); stack.properties("server"); stack.outputs()
"""
from apps.orchestration.engine.environment import Environment, ResolvedType, ResourceRegistry, parse_environment
from apps.orchestration.engine.errors import (
    CircularDependency,
    FunctionError,
    InvalidTemplateFormat,
    InvalidTemplateReference,
    InvalidTemplateSection,
    InvalidTemplateVersion,
    RequestLimitExceeded,
    StackValidationFailed,
    TemplateError,
    UnknownUserParameter,
    UserParameterMissing,
)
from apps.orchestration.engine.functions import StackContext
from apps.orchestration.engine.graph import Graph
from apps.orchestration.engine.parameters import ConstraintRegistry, custom_constraints
from apps.orchestration.engine.parse import check_nested_depth
from apps.orchestration.engine.template import Output, ResourceDefinition, Stack, Template

__all__ = [
    "CircularDependency", "ConstraintRegistry", "Environment", "FunctionError", "Graph", "InvalidTemplateFormat",
    "InvalidTemplateReference", "InvalidTemplateSection", "InvalidTemplateVersion", "Output", "RequestLimitExceeded",
    "ResolvedType", "ResourceDefinition", "ResourceRegistry", "Stack", "StackContext", "StackValidationFailed",
    "Template", "TemplateError", "UnknownUserParameter", "UserParameterMissing", "check_nested_depth",
    "custom_constraints", "parse_environment",
]
