"""Cloudflare Workers: each revision an immutable Worker version, traffic the Worker's deployment."""

from .connect import TYPE, WorkersConnector

connector = WorkersConnector
QUIET_LOGGERS = ("cloudflare", "httpx", "oras")  # request lines at INFO

__all__ = ["QUIET_LOGGERS", "TYPE", "connector"]
