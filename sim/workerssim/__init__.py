"""workerssim: a Cloudflare Workers API simulator (scripts, versions, deployments, subdomains, secrets, tails).

Cloudflare publishes no machine-readable contract in a package: the simulator's answers are checked by parsing
them into the official ``cloudflare`` SDK's typed models (generated from Cloudflare's OpenAPI document) in the
contract tests. It serves every workers.dev URL it gives out with a real MCP server. It imports nothing from the
operator.
"""

from .server import WorkersSimulator, WorkersSimulatorConfig

__all__ = ["WorkersSimulator", "WorkersSimulatorConfig"]
