"""Azure Container Apps: revisions of one container app in a managed environment, traffic by ingress weights."""

from .connect import TYPE, ContainerAppsConnector

connector = ContainerAppsConnector
QUIET_LOGGERS = ("azure",)  # the SDK logs every request and response at INFO

__all__ = ["QUIET_LOGGERS", "TYPE", "connector"]
