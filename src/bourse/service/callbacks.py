"""Delivering transfer callbacks: claim due deliveries, attempt them, record, reschedule.

Deliveries are claimed in a short transaction (``FOR UPDATE SKIP LOCKED``, then
leased by moving their due time ahead), so several workers never attempt the
same one, and no transaction stays open during the HTTP call. Each attempt is
recorded in its own transaction. The URL is checked again before every attempt
and the name resolved once; the POST goes to that checked address.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from bourse.domain.callbacks import (
    CallbackAttempt,
    CallbackDelivery,
    CallbackPolicy,
    DeliveryReport,
    SendOutcome,
    UnsafeCallbackUrl,
)
from bourse.domain.notifications import callback_given_up
from bourse.domain.outbox import DeliveryState, RetryPolicy
from bourse.service.ports import CallbackSender, Clock, Resolver, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int = 20
    # Longer than the sender's total timeout, so a lease never expires mid-attempt.
    lease: timedelta = timedelta(seconds=60)


class CallbackService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: CallbackPolicy,
        resolver: Resolver,
        sender: CallbackSender,
        settings: DeliverySettings | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._resolver = resolver
        self._sender = sender
        self._settings = settings or DeliverySettings()

    @property
    def batch_size(self) -> int:
        return self._settings.batch_size

    async def deliver_due(self) -> int:
        """Attempt every delivery due now (up to one batch); returns how many were attempted."""
        now = self._clock.now()
        async with self._uow() as uow:
            claimed = await uow.callbacks.claim_due(
                now, now + self._settings.lease, self._settings.batch_size
            )
            await uow.commit()
        if claimed:
            await asyncio.gather(*(self._attempt(d) for d in claimed))
        return len(claimed)

    async def deliveries(self, transfer_id: str) -> list[DeliveryReport]:
        """Every delivery of one transfer with its attempts, oldest first."""
        async with self._uow() as uow:
            return await uow.callbacks.for_transfer(transfer_id)

    async def _attempt(self, delivery: CallbackDelivery) -> None:
        attempted_at = self._clock.now()
        started = time.perf_counter()
        address: str | None = None
        permanent = False
        try:
            target = self._policy.check_url(delivery.url)
        except UnsafeCallbackUrl as e:
            # The URL itself is refused (e.g. the allow-list changed): retrying cannot help.
            outcome, permanent = SendOutcome(None, f"refused: {e.message}"), True
        else:
            try:
                addresses = (
                    [str(target.ip)]
                    if target.ip is not None
                    else await self._resolver.resolve(target.host, target.port)
                )
                ip = self._policy.pick_address(target, addresses)
            except OSError as e:
                outcome = SendOutcome(None, f"dns: {e}")
            except UnsafeCallbackUrl as e:
                # A name may resolve elsewhere later; this answer is refused and never connected to.
                outcome = SendOutcome(None, f"refused: {e.message}")
            else:
                address = str(ip)
                outcome = await self._sender.post(target, ip, delivery.body.encode())
        duration_ms = int((time.perf_counter() - started) * 1000)

        attempt_no = delivery.attempts + 1
        next_at = None
        if outcome.delivered:
            state = DeliveryState.DELIVERED
        else:
            delay = None if permanent else self._settings.retry.delay_after(attempt_no)
            if delay is None:
                state = DeliveryState.FAILED
            else:
                state = DeliveryState.PENDING
                next_at = self._clock.now() + timedelta(seconds=delay)
        attempt = CallbackAttempt(
            delivery_id=delivery.id,
            attempt=attempt_no,
            attempted_at=attempted_at,
            address=address,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=duration_ms,
        )
        async with self._uow() as uow:
            await uow.callbacks.record_attempt(attempt, state, next_at)
            if state is DeliveryState.FAILED:
                # Nothing retries it after this: staff hear of it, in the same transaction.
                await uow.notifications.add_admin(
                    callback_given_up(
                        delivery.id,
                        delivery.transfer_id,
                        delivery.url,
                        attempt_no,
                        outcome.error or f"HTTP {outcome.status_code}",
                        self._clock.now(),
                    )
                )
            await uow.commit()
