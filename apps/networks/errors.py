"""Neutron's error types: the API renders the class name as ``NeutronError.type``."""
from __future__ import annotations

from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound


class NetworkNotFound(NotFound):
    pass


class SubnetNotFound(NotFound):
    pass


class PortNotFound(NotFound):
    pass


class RouterNotFound(NotFound):
    pass


class FloatingIPNotFound(NotFound):
    pass


class SecurityGroupNotFound(NotFound):
    pass


class SecurityGroupRuleNotFound(NotFound):
    pass


class SubnetPoolNotFound(NotFound):
    pass


class AgentNotFound(NotFound):
    pass


class ExtensionNotFound(NotFound):
    pass


class RouterInterfaceNotFound(NotFound):
    pass


class RouterInterfaceNotFoundForSubnet(NotFound):
    pass


class ExternalGatewayForFloatingIPNotFound(NotFound):
    pass


class InvalidInput(BadRequest):
    pass


class BadRequestError(BadRequest):
    pass


class PolicyNotAuthorized(Forbidden):
    pass


class IpAddressAlreadyAllocated(Conflict):
    pass


class IpAddressGenerationFailure(Conflict):
    pass


class MacAddressInUse(Conflict):
    pass


class NetworkInUse(Conflict):
    pass


class SubnetInUse(Conflict):
    pass


class PortInUse(Conflict):
    pass


class RouterInUse(Conflict):
    pass


class RouterInterfaceInUseByFloatingIP(Conflict):
    pass


class SecurityGroupInUse(Conflict):
    pass


class SecurityGroupRuleExists(Conflict):
    pass


class SecurityGroupCannotRemoveDefault(Conflict):
    pass


class FloatingIPPortAlreadyAssociated(Conflict):
    pass


class GatewayConflictWithAllocationPools(Conflict):
    pass


class OverQuota(Conflict):
    pass


class SubnetPoolInUse(Conflict):
    pass


class SubnetAllocationError(Conflict):
    pass


class DeviceIDNotOwnedByTenant(Forbidden):
    pass
