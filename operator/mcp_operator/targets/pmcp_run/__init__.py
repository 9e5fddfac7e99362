"""pmcp.run: managed MCP hosting through the GraphQL API cargo-pmcp speaks. No revisions: each one is a new deployment."""

from .connect import TYPE, PmcpRunConnector

connector = PmcpRunConnector
QUIET_LOGGERS = ("oras",)

__all__ = ["QUIET_LOGGERS", "TYPE", "connector"]
