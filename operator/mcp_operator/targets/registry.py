"""``target.type`` -> the Connector that builds targets of that type.

Each package under ``targets/`` is one cloud and exports ``TYPE`` (its ``target.type``),
``connector`` (a factory taking the operator's settings), ``CAPABILITIES`` (what its targets can do, for
tools that must know before connecting, such as the demo) and ``QUIET_LOGGERS`` (its SDK's chatty
loggers). Adding a cloud is adding a package: nothing
here, in the controller or in the CLI names one.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from ..contract import Capabilities, Connector, ConnectorFactory
from ..settings import Settings


@cache
def _packages() -> tuple[ModuleType, ...]:
    package = importlib.import_module(__package__ or "mcp_operator.targets")
    return tuple(importlib.import_module(f"{package.__name__}.{module.name}")
                 for module in pkgutil.iter_modules(package.__path__) if module.ispkg)


def factories() -> dict[str, ConnectorFactory]:
    return {target.TYPE: target.connector for target in _packages()}


def quiet_loggers() -> tuple[str, ...]:
    return tuple(name for target in _packages() for name in getattr(target, "QUIET_LOGGERS", ()))


def capabilities(target_type: str) -> Capabilities:
    return next(target.CAPABILITIES for target in _packages() if target_type == target.TYPE)  # type: ignore[no-any-return]


def supported() -> tuple[str, ...]:
    return tuple(sorted(factories()))


class Connectors:
    """One connector per target type, built on first use and closed together."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._built: dict[str, Connector] = {}

    def get(self, target_type: str) -> Connector | None:
        if target_type not in self._built:
            factory = factories().get(target_type)
            if factory is None:
                return None
            self._built[target_type] = factory(self.settings)
        return self._built[target_type]

    async def close(self) -> None:
        for connector in self._built.values():
            await connector.close()
        self._built.clear()
