"""pmcp.run: managed MCP hosting through the GraphQL API cargo-pmcp speaks. No revisions: each one is a new deployment."""

from .connect import TYPE, PmcpRunConnector
from .target import PmcpRunTarget

connector = PmcpRunConnector
CAPABILITIES = PmcpRunTarget.capabilities
QUIET_LOGGERS = ("oras",)

__all__ = ["CAPABILITIES", "QUIET_LOGGERS", "TYPE", "connector"]
