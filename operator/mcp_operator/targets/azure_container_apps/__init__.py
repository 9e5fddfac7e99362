"""Azure Container Apps: revisions of one container app in a managed environment, traffic by ingress weights."""

from .connect import TYPE, ContainerAppsConnector
from .target import ContainerAppsTarget

connector = ContainerAppsConnector
CAPABILITIES = ContainerAppsTarget.capabilities
QUIET_LOGGERS = ("azure",)  # the SDK logs every request and response at INFO

__all__ = ["CAPABILITIES", "QUIET_LOGGERS", "TYPE", "connector"]
