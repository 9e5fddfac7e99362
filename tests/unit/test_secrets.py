"""The Secret index: fingerprints of values (never values), who uses which Secret, and the revision digest."""

from __future__ import annotations

import asyncio

from mcp_operator.api.models import McpDeploymentSpec
from mcp_operator.reconcile.desired import resolve, with_secrets_digest
from mcp_operator.secrets import SecretIndex, fingerprint
from tests.unit.test_plan import SpecOnly


def test_a_changed_value_wakes_its_users_and_nothing_else_does() -> None:
    index = SecretIndex()
    woken: list[str] = []
    index.wakers[("team", "calc")] = lambda: woken.append("calc")
    index.wakers[("team", "other")] = lambda: woken.append("other")
    index.refer("team", "calc", {"keys"})
    index.refer("team", "other", {"unrelated"})
    index.seen("team", "keys", {"token": "one"})  # first sight: the pass that referred to it already read it
    assert woken == []
    index.seen("team", "keys", {"token": "one"})  # resent unchanged (a resync, a label change)
    assert woken == []
    index.seen("team", "keys", {"token": "two"})
    assert woken == ["calc"]
    index.seen("team", "keys", None)  # deleted: the pass then reports SecretNotFound
    assert woken == ["calc", "calc"]
    index.forget("team", "calc")
    index.seen("team", "keys", {"token": "three"})
    assert woken == ["calc", "calc"]


def test_the_index_keeps_fingerprints_never_values() -> None:
    index = SecretIndex()
    index.seen("team", "keys", {"token": "sk-live-123"})
    assert "sk-live-123" not in repr(index.fingerprints)
    assert index.fingerprints[("team", "keys")] == {"token": fingerprint("sk-live-123")}


def test_the_digest_is_short_salted_per_resource_and_follows_the_values() -> None:
    index = SecretIndex()

    def digest(salt: str, value: str) -> str:
        return asyncio.run(index.digest(salt, [("TOKEN", "keys", "token", fingerprint(value))]))

    first = digest("uid-a", "one")
    assert len(first) == 12 and first == digest("uid-a", "one")
    assert first != digest("uid-a", "two"), "a rotated value changes the digest"
    assert first != digest("uid-b", "one"), "two resources sending one value show unrelated digests"


def test_the_digest_makes_the_revision_and_is_kept_in_its_snapshot() -> None:
    spec = McpDeploymentSpec.model_validate({"target": {"type": "azure-container-apps"}, "server": {"image": "x", "env": [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "token"}}}]}})
    plain = resolve(spec, "calc", "team", SpecOnly())  # type: ignore[arg-type]
    one, two = with_secrets_digest(plain, "aaaaaaaaaaaa"), with_secrets_digest(plain, "bbbbbbbbbbbb")
    assert one.revision_hash != two.revision_hash != plain.revision_hash
    assert one.snapshot.secrets_digest == "aaaaaaaaaaaa"
    assert with_secrets_digest(plain, None) is plain, "no Secret values: the revision is what it always was"
