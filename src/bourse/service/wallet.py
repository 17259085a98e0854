"""The ext-orders seamless wallet: create, cancel, settle and look up ext requests.

Each call is one unit of work. The stored ext request (caller, extRequestId) is
inserted before the ledger transaction and committed with it, so a request
either moved money and is remembered, or did neither. A concurrent duplicate
waits on that row's unique key and then replays the stored response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bourse.domain.errors import InsufficientFunds, InvariantViolation, NotFound
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
from bourse.service.ledger import post
from bourse.service.ports import Clock, ExtRequestRecord, UnitOfWorkFactory

EXT_ORDERS_SCOPE = "ext-orders"


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
        async with self._uow() as uow:
            stored = await uow.ext_requests.get(caller.token_id, request.ext_request_id)
            if stored is not None:
                return _replay(stored, fingerprint)
            user = await uow.users.get_by_username(request.username)
            # A disabled user may still get staked money back, but stakes no more.
            if user is None or (not user.is_active and request.type is ExtRequestType.CREATE):
                raise UnknownUser(f"no user {request.username!r}", field="username")
            account = await uow.accounts.default_for_user(user.uid)
            if account is None:
                raise UnknownUser(f"user {request.username!r} has no wallet", field="username")
            asset = await uow.assets.get(request.currency)
            if asset is None:
                raise UnknownCurrency(f"no currency {request.currency!r}", field="currency")
            for name, amount in request.amounts.items():
                check_scale(amount, asset.scale, name)

            now = self._clock.now()
            record = ExtRequestRecord(
                caller_id=caller.token_id,
                ext_request_id=request.ext_request_id,
                type=request.type,
                uid=user.uid,
                account_id=account.account_id,
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

            tx = ledger_transaction(request, account.account_id, caller.token_id)
            try:
                await post(uow, tx, actor=f"service:{caller.name}", subject=f"user:{user.uid}", meta=meta)
            except InsufficientFunds as exc:
                if exc.details.get("bucket") in over_release_buckets(request.type):
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
