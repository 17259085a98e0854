"""Who a bearer token stands for, remembered while nothing about it can have changed.

Resolving a token costs a signature check and a database round trip (user, roles,
revocation); a trader's client sends the same token many times a second. An entry
lives at most ``ttl`` seconds and never past the token's own expiry, and:

- a change made in this process (logout, role granted or revoked) drops the user's
  entries at once (``forget_user``), and the next request reads the database;
- a change made elsewhere (the CLI, another server process, SQL) moves the database's
  security epoch, and ``SecurityEpoch`` drops every entry (``forget_all``) within a
  second of it: the staleness bound documented in ADR 0003. ``ttl`` is only a backstop.

Only successful resolutions are kept: a refused token is checked again every time.
Each entry lives a random time between ``ttl / 2`` and ``ttl``: clients that started
together would otherwise all be looked up again in the same instant, a burst that
overflows the connection pool (new connections each time) every ``ttl`` seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from bourse.domain.identity import Principal
from bourse.domain.values import UserId

DEFAULT_TTL_SECONDS = 60.0
MAX_ENTRIES = 100_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TokenCache(Generic[K, V]):
    """Resolutions of tokens (key: the token or its digest), each with an owner to forget by."""

    def __init__(self, ttl: float, max_entries: int, owner: Callable[[V], Hashable]) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._owner = owner
        # key -> (valid until, as a POSIX timestamp of the service's clock; the resolution)
        self._entries: dict[K, tuple[float, V]] = {}
        self._by_owner: dict[Hashable, set[K]] = {}
        # Bumped by every forget: a lookup that read the database before a change committed
        # here must not put its (now stale) answer back afterwards. One counter for all
        # owners: changes are rare, and a lookup that loses the race is only not cached.
        self._generation = 0

    @property
    def generation(self) -> int:
        """Take before reading the database; give to ``put``."""
        return self._generation

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            self._drop(key, self._owner(entry[1]))
            return None
        return entry[1]

    def put(self, key: K, value: V, now: float, expires_at: float, generation: int) -> None:
        if self.ttl <= 0 or generation != self._generation:
            return
        if len(self._entries) >= self._max:
            self.clear()
        lifetime = self.ttl * (0.5 + 0.5 * random.random())  # noqa: S311 - spreading load, not a secret
        self._entries[key] = (min(now + lifetime, expires_at), value)
        self._by_owner.setdefault(self._owner(value), set()).add(key)

    def forget_owner(self, owner: Hashable) -> None:
        self._generation += 1
        for key in self._by_owner.pop(owner, ()):
            self._entries.pop(key, None)

    def forget_all(self) -> None:
        """Drop every entry, and refuse the answers of lookups that read the database before."""
        self._generation += 1
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._by_owner.clear()

    def _drop(self, key: K, owner: Hashable) -> None:
        self._entries.pop(key, None)
        keys = self._by_owner.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_owner[owner]


class PrincipalCache(TokenCache[str, Principal]):
    """Bearer tokens' principals, forgotten by user."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        super().__init__(ttl, max_entries, _uid)

    def forget_user(self, uid: UserId) -> None:
        self.forget_owner(uid)


def _uid(principal: Principal) -> UserId:
    return principal.uid
