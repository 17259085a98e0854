"""When kept token resolutions must be dropped: the database's security epoch, read once a second.

Bearer tokens' principals (``PrincipalCache``) and service tokens' callers are kept so that a
client sending the same token many times a second does not cost a database lookup each time.
They used to be kept 2 s each, so a busy server looked every token up again every 1-2 s:
64 traders' tokens were ~40 lookups a second, each a unit of work of its own.

Now every change to who a token stands for moves one counter in the database (migration 0024:
triggers on users, user_roles, revoked_tokens, service_tokens, in the changing transaction).
A process reads it at most every ``interval`` seconds, from the first request due; when it has
moved, every kept resolution is dropped. So a change made elsewhere (the CLI, another server
process, SQL) acts within two intervals (the 2 s bound of ADR 0003), and a change made by this
process still drops its own entries at once. Kept entries also end
after their own TTL (60 s), in case a change ever bypasses the triggers.

Requests that arrive while the read is in flight keep using what is kept. A change committed
just after one read started is seen by the next, due ``interval`` later and given ``interval``
to finish (else everything is dropped): 2 s at most with the default of 1 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bourse.service.ports import UnitOfWorkFactory

DEFAULT_INTERVAL_SECONDS = 1.0


class SecurityEpoch:
    def __init__(self, uow: UnitOfWorkFactory, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self._uow = uow
        self.interval = interval
        self._epoch: int | None = None
        self._due = float("-inf")  # when the next read is due, as a POSIX timestamp
        self._drops: list[Callable[[], None]] = []

    def on_change(self, drop: Callable[[], None]) -> None:
        """``drop`` forgets everything its cache keeps; called when the epoch has moved."""
        self._drops.append(drop)

    async def check(self, now: float) -> None:
        """Read the epoch if a read is due (the caller's clock, ``now``); drop every cache if it moved.

        A read that fails, or does not finish within ``interval`` (say, waiting for a connection of
        a busy pool while other requests keep using the caches), drops every cache too: nothing
        kept can be vouched for then. The caller goes on to look its token up itself, which
        answers or fails on its own; only a cancellation is raised.
        """
        if now < self._due:
            return
        self._due = now + self.interval
        try:
            async with asyncio.timeout(self.interval):
                async with self._uow() as uow:
                    epoch = await uow.users.security_epoch()
        except Exception:
            self._forget()
            return
        except BaseException:
            self._forget()
            raise
        if epoch != self._epoch:
            self._drop_all()
            self._epoch = epoch

    def _forget(self) -> None:
        self._drop_all()
        self._epoch = None

    def _drop_all(self) -> None:
        for drop in self._drops:
            drop()
