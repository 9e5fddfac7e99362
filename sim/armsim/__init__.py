"""armsim: an Azure Resource Manager + Microsoft identity platform simulator for mcp-operator's tests.

It is the cloud's stand-in, so it imports nothing from the operator and shares none of its assumptions.
"""

from simcore.faults import Fault

from .server import Simulator, SimulatorConfig

__all__ = ["Fault", "Simulator", "SimulatorConfig"]
