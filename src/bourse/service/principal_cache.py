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

from bourse.domain.identity import Principal
from bourse.domain.values import UserId

DEFAULT_TTL_SECONDS = 60.0
MAX_ENTRIES = 100_000


class PrincipalCache:
    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self._max = max_entries
        # token -> (valid until, as a POSIX timestamp of the service's clock; the principal)
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._by_user: dict[UserId, set[str]] = {}
        # Bumped by every forget_user: a lookup that read the database before a change
        # committed here must not put its (now stale) answer back afterwards. One counter for
        # all users: changes are rare, and a lookup that loses the race is only not cached.
        self._generation = 0

    @property
    def generation(self) -> int:
        """Take before reading the database; give to ``put``."""
        return self._generation

    def get(self, token: str, now: float) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if now >= entry[0]:
            self._drop(token, entry[1].uid)
            return None
        return entry[1]

    def put(self, token: str, principal: Principal, now: float, expires_at: float, generation: int) -> None:
        if self.ttl <= 0 or generation != self._generation:
            return
        if len(self._entries) >= self._max:
            self.clear()
        lifetime = self.ttl * (0.5 + 0.5 * random.random())  # noqa: S311 - spreading load, not a secret
        self._entries[token] = (min(now + lifetime, expires_at), principal)
        self._by_user.setdefault(principal.uid, set()).add(token)

    def forget_user(self, uid: UserId) -> None:
        self._generation += 1
        for token in self._by_user.pop(uid, ()):
            self._entries.pop(token, None)

    def forget_all(self) -> None:
        """Drop every entry, and refuse the answers of lookups that read the database before."""
        self._generation += 1
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._by_user.clear()

    def _drop(self, token: str, uid: UserId) -> None:
        self._entries.pop(token, None)
        tokens = self._by_user.get(uid)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_user[uid]
