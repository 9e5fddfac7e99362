"""Which namespaces the operator serves, and how kopf is asked to watch them (see scope.py for why)."""

from __future__ import annotations

import pytest

from mcp_operator.scope import Scope


@pytest.mark.parametrize(("patterns", "clusterwide", "kopf_namespaces"), [
    ((), True, []),
    (("team-a", "team-b"), False, ["team-a", "team-b"]),  # exact names: namespaced watches, least-privilege RBAC
    (("team-*",), True, []),  # globs: kopf's namespace discovery can miss a new namespace, so watch cluster-wide
    (("team-a", "e2e-?x"), True, []),
])
def test_how_kopf_is_asked_to_watch(patterns: tuple[str, ...], clusterwide: bool, kopf_namespaces: list[str]) -> None:
    scope = Scope(patterns)
    assert (scope.clusterwide, scope.kopf_namespaces) == (clusterwide, kopf_namespaces)


@pytest.mark.parametrize(("patterns", "namespace", "served"), [
    ((), "anything", True),
    (("team-*",), "team-a", True),
    (("team-*",), "other", False),
    (("team-*",), "team", False),
    (("team-*", "!team-secret"), "team-secret", False),
    (("team-*", "!team-secret"), "team-b", True),
    (("!kube-*",), "default", True),
    (("!kube-*",), "kube-system", False),
    (("team-a",), "team-a", True),
    (("team-a",), "team-ab", False),
])
def test_which_namespaces_are_served(patterns: tuple[str, ...], namespace: str, served: bool) -> None:
    assert Scope(patterns).serves(namespace) is served
