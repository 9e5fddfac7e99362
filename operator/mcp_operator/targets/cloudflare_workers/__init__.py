"""Cloudflare Workers: each revision an immutable Worker version, traffic the Worker's deployment."""

from .connect import TYPE, WorkersConnector
from .target import WorkersTarget

connector = WorkersConnector
CAPABILITIES = WorkersTarget.capabilities
QUIET_LOGGERS = ("cloudflare", "httpx", "oras")  # request lines at INFO

__all__ = ["CAPABILITIES", "QUIET_LOGGERS", "TYPE", "connector"]
