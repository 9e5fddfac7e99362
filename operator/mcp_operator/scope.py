"""Which namespaces the operator serves, and how kopf is asked to watch them.

Exact namespace names are watched namespace by namespace (least-privilege RBAC). Glob patterns are not
handed to kopf: kopf finds namespaces matching a pattern by listing them and then starting a watch
whose own initial listing it ignores, so a namespace created between the two listings is never
watched (until a restart). With globs the operator therefore watches McpDeployments cluster-wide and
keeps only those in matching namespaces (needs cluster-wide list/watch of McpDeployments, as any
glob does of namespaces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

GLOB_CHARACTERS = set("*?[!")


def has_globs(patterns: Sequence[str]) -> bool:
    return any(set(pattern) & GLOB_CHARACTERS for pattern in patterns)


@dataclass(frozen=True)
class Scope:
    patterns: tuple[str, ...] = ()  # empty: every namespace

    @property
    def clusterwide(self) -> bool:
        """Whether kopf watches every namespace (no patterns, or patterns it cannot be trusted with)."""
        return not self.patterns or has_globs(self.patterns)

    @property
    def kopf_namespaces(self) -> list[str]:
        return [] if self.clusterwide else list(self.patterns)

    def serves(self, namespace: str | None) -> bool:
        """kopf's pattern rules: included by a pattern, and not excluded by a '!pattern'."""
        if not self.patterns:
            return True
        name = namespace or ""
        included = [p for p in self.patterns if not p.startswith("!")]
        excluded = [p[1:] for p in self.patterns if p.startswith("!")]
        inside = not included or any(fnmatchcase(name, p) for p in included)
        return inside and not any(fnmatchcase(name, p) for p in excluded)
