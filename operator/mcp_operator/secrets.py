"""Which Secret values each McpDeployment sends, as digests, so that a rotated key rolls out a new revision.

The operator watches Secrets (in the namespaces it serves) and keeps, per Secret key, a SHA-256 of
the value in memory only; values themselves are never kept, logged or written. A revision's
``secretsDigest`` is derived from those with scrypt, salted per McpDeployment, and shortened: status
then tells which key generation each revision ran, and a guessed value cannot be checked against it
cheaply. When a watched value changes, the McpDeployments that use it are woken at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Key = tuple[str, str]  # (namespace, name)
DIGEST_LENGTH = 12  # hex characters shown in status
_SCRYPT = {"n": 2 ** 10, "r": 8, "p": 1}  # ~2 ms once per change of a resource's values, run off the event loop


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class SecretIndex:
    fingerprints: dict[Key, dict[str, str]] = field(default_factory=dict)  # Secret -> key -> SHA-256 of its value
    users: dict[Key, set[Key]] = field(default_factory=dict)  # Secret -> the McpDeployments that send its values
    uses: dict[Key, set[Key]] = field(default_factory=dict)  # McpDeployment -> the Secrets it uses (the reverse)
    protected: set[Key] = field(default_factory=set)  # Secrets carrying our in-use finalizer, as last delivered
    wakers: dict[Key, Callable[[], None]] = field(default_factory=dict)  # McpDeployment -> wakes its reconcile loop
    _digests: dict[tuple[str, str], str] = field(default_factory=dict)  # (salt, canonical entries) -> digest

    def seen(self, namespace: str, name: str, data: Mapping[str, str] | None, protected: bool = False) -> None:
        """A Secret as the watch delivers it (None: deleted); its users are woken when a value they use changed."""
        key = (namespace, name)
        if protected and data is not None:
            self.protected.add(key)
        else:
            self.protected.discard(key)
        before = self.fingerprints.get(key)
        if data is None:
            self.fingerprints.pop(key, None)
        else:
            self.fingerprints[key] = {k: fingerprint(v) for k, v in data.items()}
        if before is not None and before != self.fingerprints.get(key):
            for user in self.users.get(key, ()):
                wake = self.wakers.get(user)
                if wake is not None:
                    wake()

    def refer(self, namespace: str, user: str, secret_names: set[str]) -> None:
        """The Secrets an McpDeployment uses now (replacing what it used before)."""
        who = (namespace, user)
        for secret in self.uses.pop(who, set()):
            self.users.get(secret, set()).discard(who)
        for name in secret_names:
            self.use((namespace, name), who)

    def use(self, secret: Key, who: Key) -> None:
        self.users.setdefault(secret, set()).add(who)
        self.uses.setdefault(who, set()).add(secret)

    def forget(self, namespace: str, user: str) -> None:
        self.refer(namespace, user, set())
        self.wakers.pop((namespace, user), None)

    async def digest(self, salt: str, entries: list[tuple[str, str, str, str]]) -> str:
        """The short digest of (env name, Secret, key, value fingerprint) entries."""
        canonical = json.dumps(sorted(entries))
        cached = self._digests.get((salt, canonical))
        if cached is None:
            derived = await asyncio.to_thread(hashlib.scrypt, canonical.encode(), salt=salt.encode(), dklen=16, **_SCRYPT)
            cached = self._digests[(salt, canonical)] = derived.hex()[:DIGEST_LENGTH]
            if len(self._digests) > 10_000:  # old generations of values: drop the oldest entries
                for stale in list(self._digests)[:1_000]:
                    del self._digests[stale]
        return cached

