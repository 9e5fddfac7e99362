"""Google Cloud Run: each revision a Cloud Run revision we name, traffic the service's pinned traffic list."""

from .connect import TYPE, CloudRunConnector
from .target import CloudRunTarget

connector = CloudRunConnector
CAPABILITIES = CloudRunTarget.capabilities
QUIET_LOGGERS = ("google.auth", "urllib3")  # token refresh chatter at INFO

__all__ = ["CAPABILITIES", "QUIET_LOGGERS", "TYPE", "connector"]
