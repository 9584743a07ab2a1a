"""Shared plumbing of Switchyard services: config, errors, gRPC server factory, local channels."""

from switchyard_core.config import ConfigError, DeploymentConfig, GatewayConfig, GeneralSettings, load_config
from switchyard_core.errors import SwitchyardError
from switchyard_core.runtime import Channels, Service, ServiceSettings

__all__ = [
    "Channels",
    "ConfigError",
    "DeploymentConfig",
    "GatewayConfig",
    "GeneralSettings",
    "Service",
    "ServiceSettings",
    "SwitchyardError",
    "load_config",
]
