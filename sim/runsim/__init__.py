"""runsim: a Google Cloud Run Admin API v2 + Secret Manager + Cloud Logging + token endpoints simulator.

No Cloud Run emulator exists. This one checks every request and answer against the discovery documents
google-api-python-client ships (accepting enums as integers, as Google's REST clients send them), issues
and checks OAuth access tokens the way google-auth obtains them (service-account keys, workload identity
federation), and serves every URL it hands out with a real MCP server. It imports nothing from the operator.
"""

from .server import GcpSimulator, GcpSimulatorConfig

__all__ = ["GcpSimulator", "GcpSimulatorConfig"]
