"""The ext-orders seamless wallet: create, cancel, settle and look up ext requests.

Each call is one unit of work. The stored ext request (caller, extRequestId) is
inserted before the ledger transaction and committed with it, so a request
either moved money and is remembered, or did neither. A concurrent duplicate
waits on that row's unique key and then replays the stored response.

A request costs four round trips: one read of everything it needs (a stored twin, the
user, their wallet, the currency), the insert of the request, the ledger write with its
audit row, the commit. That ledger write has no savepoint, so any failure rolls the
whole unit of work back; when the ledger asks for another run (its remembered account
ids went stale, a deadlock) the request runs again from the start, and an overdraft it
refused without naming the account runs again on the ledger's path that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bourse.domain.errors import Conflict, InsufficientFunds, InvariantViolation, NotFound
from bourse.domain.identity import ServiceCaller
from bourse.domain.ledger import check_scale
from bourse.domain.wallet import (
    ExtRequest,
    ExtRequestConflict,
    ExtRequestType,
    OverRelease,
    UnknownCurrency,
    UnknownUser,
    ledger_transaction,
    over_release_buckets,
    parse_request,
    success_response,
)
from bourse.service.context import RequestMeta
from bourse.service.ledger import post, post_for_rollback
from bourse.service.ports import Clock, ExtRequestRecord, UnitOfWorkFactory

EXT_ORDERS_SCOPE = "ext-orders"
# Runs of one request's unit of work when the ledger asks for another (retryable Conflict).
ATTEMPTS = 3


class _UnnamedShortfall(Exception):
    """The one-round-trip ledger write refused an overdraft without naming the account."""


class WalletService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def create(
        self, caller: ServiceCaller, body: Mapping[str, Any], meta: RequestMeta
    ) -> Mapping[str, Any]:
        """Stake ``amount`` (and ``bonusAmount``); ``body`` as in the spec. Returns the response to send."""
        return await self._apply(caller, parse_request(ExtRequestType.CREATE, body), meta)

    async def cancel(
        self, caller: ServiceCaller, body: Mapping[str, Any], meta: RequestMeta
    ) -> Mapping[str, Any]:
        """Return ``amount`` (and ``bonusAmount``) from the stake to the wallet."""
        return await self._apply(caller, parse_request(ExtRequestType.CANCEL, body), meta)

    async def settle(
        self, caller: ServiceCaller, body: Mapping[str, Any], meta: RequestMeta
    ) -> Mapping[str, Any]:
        """Release ``totalOrderAmount`` from the stake, credit it plus ``pnlAmount``; the house pays the pnl."""
        return await self._apply(caller, parse_request(ExtRequestType.SETTLEMENT, body), meta)

    async def _apply(
        self, caller: ServiceCaller, request: ExtRequest, meta: RequestMeta
    ) -> Mapping[str, Any]:
        """Apply a request once; a repeat gets the stored response (same request) or a conflict."""
        caller.require_scope(EXT_ORDERS_SCOPE)
        fingerprint = request.fingerprint()
        precise = False
        attempt = 1
        while True:
            try:
                return await self._apply_once(caller, request, meta, fingerprint, precise)
            except _UnnamedShortfall:
                # Refusals are rare: run again on the ledger's slower path, which names the account.
                precise = True
            except Conflict as exc:
                # Remembered ledger account ids gone stale, a deadlock: nothing was kept, run again.
                if exc.details.get("retryable") is not True or attempt >= ATTEMPTS:
                    raise
                attempt += 1

    async def _apply_once(
        self,
        caller: ServiceCaller,
        request: ExtRequest,
        meta: RequestMeta,
        fingerprint: bytes,
        precise: bool,
    ) -> Mapping[str, Any]:
        async with self._uow() as uow:
            found = await uow.ext_requests.lookup(
                caller.token_id, request.ext_request_id, request.username, request.currency
            )
            if found.stored is not None:
                return _replay(found.stored, fingerprint)
            # A disabled user may still get staked money back, but stakes no more.
            if found.uid is None or (not found.user_active and request.type is ExtRequestType.CREATE):
                raise UnknownUser(f"no user {request.username!r}", field="username")
            if found.account_id is None:
                raise UnknownUser(f"user {request.username!r} has no wallet", field="username")
            if found.asset_scale is None:
                raise UnknownCurrency(f"no currency {request.currency!r}", field="currency")
            for name, amount in request.amounts.items():
                check_scale(amount, found.asset_scale, name)

            now = self._clock.now()
            record = ExtRequestRecord(
                caller_id=caller.token_id,
                ext_request_id=request.ext_request_id,
                type=request.type,
                uid=found.uid,
                account_id=found.account_id,
                currency=request.currency,
                request=dict(request.sent),
                fingerprint=fingerprint,
                response=success_response(int(now.timestamp() * 1000)),
                created_at=now,
            )
            if not await uow.ext_requests.reserve(record):
                # A concurrent twin committed first: it is now a stored request like any other.
                stored = await uow.ext_requests.get(caller.token_id, request.ext_request_id)
                if stored is None:
                    raise InvariantViolation("ext request vanished after a duplicate insert")
                return _replay(stored, fingerprint)

            tx = ledger_transaction(request, found.account_id, caller.token_id)
            actor, subject = f"service:{caller.name}", f"user:{found.uid}"
            try:
                if precise:
                    await post(uow, tx, actor=actor, subject=subject, meta=meta)
                else:
                    await post_for_rollback(uow, tx, actor=actor, subject=subject, meta=meta)
            except InsufficientFunds as exc:
                bucket = exc.details.get("bucket")
                if bucket is None and not precise:
                    raise _UnnamedShortfall from exc
                if bucket in over_release_buckets(request.type):
                    raise OverRelease(
                        f"{request.type.value} releases more than is staked", **exc.details
                    ) from exc
                raise
            await uow.commit()
        return record.response

    async def get(self, caller: ServiceCaller, ext_request_id: str) -> ExtRequestRecord:
        """One of the caller's own stored requests; anyone else's is as unknown as a missing one."""
        caller.require_scope(EXT_ORDERS_SCOPE)
        async with self._uow() as uow:
            stored = await uow.ext_requests.get(caller.token_id, ext_request_id)
        if stored is None:
            raise NotFound(f"no ext request {ext_request_id!r}")
        return stored


def _replay(stored: ExtRequestRecord, fingerprint: bytes) -> Mapping[str, Any]:
    if stored.fingerprint != fingerprint:
        raise ExtRequestConflict(
            f"extRequestId {stored.ext_request_id!r} was used for a different request",
            extRequestId=stored.ext_request_id,
        )
    return stored.response
