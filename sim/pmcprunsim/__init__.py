"""pmcprunsim: a pmcp.run API simulator (discovery, client-credentials tokens, the GraphQL API, presigned uploads,
deployment and destroy state machines, OAuth and secrets per server).

pmcp.run publishes no schema: the simulator's schema (schema.graphql) is reconstructed from the documents cargo-pmcp
sends (cargo_pmcp_operations.json records them), and every document is validated against it as AppSync would. It
serves each server's URL with a real MCP server. It imports nothing from the operator.
"""

from .server import PmcpRunSimulator, PmcpRunSimulatorConfig

__all__ = ["PmcpRunSimulator", "PmcpRunSimulatorConfig"]
