"""A-book hedging of Dealer fills at external venues, and the venues' back office.

``enqueue(uow, fill)`` runs inside a Dealer fill's unit of work (``service/derivatives_fills.py``):
on a market with enabled hedge settings it writes one external order (``New``) for ``hedgeRatio``
of the fill's base amount, on the trader's side (the house took the other side; buying what the
trader bought closes the house's exposure). It commits or rolls back with the fill: a fill that
does not happen hedges nothing, and a fill is never left unhedged by a crash (an outbox).

``HedgingService.run_external_orders(now)`` is the job (``jobs/runner.py``), three passes:

1. time-outs: an order not finished by its ``timeout_at`` becomes ``TimedOut`` with one admin
   notification ``ExternalOrderTimeout`` (dedupe key per order) in the same transaction; then,
   outside it, the venue is asked to cancel it (best effort: the answer's fills are recorded, a
   failure is recorded in ``last_error`` and left at that);
2. sending: ``New`` orders are claimed and marked ``Sent`` (committed BEFORE the venue is called,
   so a crash can never send one twice), then placed with our id as client order id; the answer
   is recorded (``Rejected`` when the venue refused it; another error leaves it ``Sent``);
3. polling: orders ``Sent``/``Acknowledged``/``PartiallyFilled`` are looked up at the venue and
   the answer recorded, until they finish or time out.

A venue is called outside any transaction: no row lock or connection is held across the network.
Recording an answer re-reads the order under a lock, so an answer that comes back after the order
timed out only adds what the venue filled (``ExternalOrder.reported``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import Conflict, InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import MarketType, iso_millis, truncate_millis
from bourse.domain.notifications import AdminNotificationType, admin_notification
from bourse.domain.orders import Side
from bourse.domain.values import AccountId, format_decimal
from bourse.domain.venues import (
    AWAITING_VENUE,
    FINAL,
    ExternalOrder,
    ExternalOrderStatus,
    HedgeSettings,
    SourceQuote,
    VenueConfig,
    VenueCredentials,
    VenueError,
    VenueKind,
    VenueOrderRequest,
    VenueRejected,
    VenueUnavailable,
    error_text,
    hedge_amount,
    parse_hedge_settings,
    parse_venue,
    timeout_at,
)
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, SecretCipher, UnitOfWork, UnitOfWorkFactory, Venue, VenueConnector
from bourse.service.pricing import PricingService

BATCH = 100
TIMEOUT_TITLE = "External order timed out"
_S = ExternalOrderStatus
_UNFINISHED = (_S.NEW, _S.SENT, _S.ACKNOWLEDGED, _S.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class HedgeFill:
    """One Dealer fill as hedging sees it: the order, its first position execution, the trader's
    side and base amount, the fill price, and the market's amount scale."""

    order_id: int
    execution_id: int | None
    account_id: AccountId
    market_id: str
    side: Side
    base_amount: Decimal
    price: Decimal
    amount_scale: int
    at: datetime


def external_order_id(order_id: int) -> str:
    """One external order per derivative order (a Dealer order fills once, all its lots): the id
    says which, and doubles as the client order id at the venue."""
    return f"H{order_id}"


async def enqueue(uow: UnitOfWork, fill: HedgeFill) -> ExternalOrder | None:
    """The fill's hedge, written in the caller's unit of work (nothing without enabled settings, a
    zero ratio, or an amount that rounds to zero)."""
    settings = await uow.venues.get_hedging(fill.market_id)
    if settings is None or not settings.enabled:
        return None
    amount = hedge_amount(fill.base_amount, settings.ratio, fill.amount_scale)
    if amount <= 0:
        return None
    account = await uow.accounts.get(fill.account_id)
    if account is None:
        raise NotFound(f"account {fill.account_id} not found", field="accountId")
    order = ExternalOrder(
        external_order_id=external_order_id(fill.order_id),
        venue_id=settings.venue_id,
        venue_symbol=settings.venue_symbol,
        order_id=fill.order_id,
        position_execution_id=fill.execution_id,
        market_id=fill.market_id,
        account_id=fill.account_id,
        uid=account.uid,
        side=fill.side,
        amount=amount,
        status=_S.NEW,
        created_at=fill.at,
        updated_at=fill.at,
        timeout_at=timeout_at(fill.at, settings.timeout_seconds),
        reference_price=fill.price,
    )
    return order if await uow.venues.add_external_order(order) else None


# --- JSON of the back office ----------------------------------------------------------------------


def venue_json(venue: VenueConfig, credentials: VenueCredentials | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "venueId": venue.venue_id,
        "kind": venue.kind.value,
        "name": venue.name,
        "enabled": venue.enabled,
        "createdAt": iso_millis(venue.created_at),
        "updatedAt": iso_millis(venue.updated_at),
    }
    if venue.kind is VenueKind.PAPER:
        paper = venue.paper
        assert paper is not None
        out["paper"] = {
            "mode": paper.mode.value,
            "latencyMs": paper.latency_ms,
            "feeRate": format_decimal(paper.fee_rate),
        }
    else:
        out["exchange"] = venue.exchange
        out["sandbox"] = venue.sandbox
        out["credentials"] = None if credentials is None else credentials.masked()
    return out


def hedging_json(market_id: str, settings: HedgeSettings | None) -> dict[str, Any]:
    if settings is None:
        return {
            "marketId": market_id,
            "enabled": False,
            "venueId": None,
            "venueSymbol": None,
            "hedgeRatio": None,
            "timeoutSeconds": None,
            "updatedAt": None,
        }
    return {
        "marketId": market_id,
        "enabled": settings.enabled,
        "venueId": settings.venue_id,
        "venueSymbol": settings.venue_symbol,
        "hedgeRatio": format_decimal(settings.ratio),
        "timeoutSeconds": settings.timeout_seconds,
        "updatedAt": iso_millis(settings.updated_at),
    }


def _credentials_text(credentials: VenueCredentials) -> str:
    return json.dumps(
        {"apiKey": credentials.api_key, "secret": credentials.secret, "password": credentials.password}
    )


class HedgingService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        cipher: SecretCipher,
        connector: VenueConnector,
        pricing: PricingService,
        *,
        batch: int = BATCH,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._cipher = cipher
        self.connector = connector
        # The paper venue's prices (``dealer_quote``'s raw bid and ask).
        self._pricing = pricing
        self.batch = batch

    # --- venues (back office) ---------------------------------------------------------------------

    def _credentials(self, venue: VenueConfig) -> VenueCredentials | None:
        if venue.credentials_enc is None:
            return None
        data = json.loads(self._cipher.decrypt(venue.credentials_enc))
        return VenueCredentials(data["apiKey"], data["secret"], data.get("password"))

    def _check_exchange(self, venue: VenueConfig) -> None:
        if venue.exchange is not None and not self.connector.supports_exchange(venue.exchange):
            raise InvalidInput(f"ccxt knows no exchange {venue.exchange}", field="exchange")

    async def list_venues(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            venues = await uow.venues.list_venues()
        return [venue_json(v, self._credentials(v)) for v in venues]

    async def get_venue(self, principal: Principal, venue_id: str) -> dict[str, Any]:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            venue = await uow.venues.get_venue(venue_id)
        if venue is None:
            raise NotFound(f"venue {venue_id} not found", field="venueId")
        return venue_json(venue, self._credentials(venue))

    async def create_venue(self, principal: Principal, body: object, meta: RequestMeta) -> dict[str, Any]:
        principal.require(Operation.MANAGE_MARKETS)
        parsed = parse_venue(body, truncate_millis(self._clock.now()))
        venue = parsed.config
        self._check_exchange(venue)
        if parsed.credentials is not None:
            venue = replace(
                venue, credentials_enc=self._cipher.encrypt(_credentials_text(parsed.credentials))
            )
        async with self._uow() as uow:
            if not await uow.venues.add_venue(venue):
                raise Conflict(f"a venue {venue.venue_id} exists", field="venueId")
            await self._audit(uow, principal, AuditAction.VENUE_CREATED, venue, meta, parsed.credentials)
            await uow.commit()
        return venue_json(venue, parsed.credentials)

    async def update_venue(
        self, principal: Principal, venue_id: str, body: object, meta: RequestMeta
    ) -> dict[str, Any]:
        """A whole replacement of the venue's settings; omitted credentials keep the stored ones."""
        principal.require(Operation.MANAGE_MARKETS)
        async with self._uow() as uow:
            before = await uow.venues.get_venue(venue_id, for_update=True)
            if before is None:
                raise NotFound(f"venue {venue_id} not found", field="venueId")
            parsed = parse_venue(body, truncate_millis(self._clock.now()), venue_id=venue_id, before=before)
            venue = parsed.config
            self._check_exchange(venue)
            if parsed.credentials is not None:
                venue = replace(
                    venue, credentials_enc=self._cipher.encrypt(_credentials_text(parsed.credentials))
                )
            await uow.venues.save_venue(venue)
            await self._audit(uow, principal, AuditAction.VENUE_UPDATED, venue, meta, parsed.credentials)
            await uow.commit()
        return venue_json(venue, self._credentials(venue))

    async def delete_venue(self, principal: Principal, venue_id: str, meta: RequestMeta) -> None:
        """Refused (409) while hedge settings or external orders name the venue: disable it instead."""
        principal.require(Operation.MANAGE_MARKETS)
        async with self._uow() as uow:
            venue = await uow.venues.get_venue(venue_id, for_update=True)
            if venue is None:
                raise NotFound(f"venue {venue_id} not found", field="venueId")
            if await uow.venues.venue_in_use(venue_id):
                raise Conflict(
                    f"venue {venue_id} is named by hedge settings or external orders; disable it instead",
                    field="venueId",
                )
            await uow.venues.delete_venue(venue_id)
            await self._audit(uow, principal, AuditAction.VENUE_DELETED, venue, meta, None)
            await uow.commit()

    async def _audit(
        self,
        uow: UnitOfWork,
        principal: Principal,
        action: AuditAction,
        venue: VenueConfig,
        meta: RequestMeta,
        credentials: VenueCredentials | None,
    ) -> None:
        details = venue_json(venue, None)
        details.pop("credentials", None)
        details["credentialsChanged"] = credentials is not None  # never the keys, not even masked
        await uow.audit.append(
            AuditEntry(
                principal.username, action, f"venue:{venue.venue_id}", meta.request_id, meta.ip, details
            )
        )

    # --- hedge settings (back office) ------------------------------------------------------------

    async def hedging(self, principal: Principal, market_id: str) -> dict[str, Any]:
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            if await uow.markets.get(market_id) is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            settings = await uow.venues.get_hedging(market_id)
        return hedging_json(market_id, settings)

    async def set_hedging(
        self, principal: Principal, market_id: str, body: object, meta: RequestMeta
    ) -> dict[str, Any]:
        """Replace the market's hedge settings (a whole PUT). Only Cfd and Perpetual markets fill
        against the house, so only they are hedged; the venue must exist."""
        principal.require(Operation.MANAGE_MARKETS)
        now = truncate_millis(self._clock.now())
        async with self._uow() as uow:
            market = await uow.markets.get(market_id, for_update=True)
            if market is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            if market.type is MarketType.SPOT:
                raise InvalidInput(
                    f"market {market_id} is a Spot market: only Cfd and Perpetual markets are hedged",
                    field="marketId",
                )
            settings = parse_hedge_settings(market_id, body, now)
            if await uow.venues.get_venue(settings.venue_id) is None:
                raise InvalidInput(f"venueId {settings.venue_id} names no venue", field="venueId")
            await uow.venues.put_hedging(settings)
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.MARKET_UPDATED,
                    f"market:{market_id}",
                    meta.request_id,
                    meta.ip,
                    {"fields": ["hedging"], "hedging": hedging_json(market_id, settings)},
                )
            )
            await uow.commit()
        return hedging_json(market_id, settings)

    # --- the paper venue's prices -------------------------------------------------------------------

    async def source_quote(self, market_id: str) -> SourceQuote:
        """The market's source bid/ask (before the dealer markup) and its quote asset; NotFound for
        no such market, PriceUnavailable without a fresh price."""
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
        if market is None:
            raise NotFound(f"market {market_id} not found", field="venueSymbol")
        quote = await self._pricing.dealer_quote(market_id)
        return SourceQuote(quote.raw_bid, quote.raw_ask, market.quote_asset)

    # --- the job -------------------------------------------------------------------------------------

    async def run_external_orders(self, now: datetime | None = None) -> int:
        """One pass of the job: time-outs, sends, look-ups. How many orders it dealt with."""
        now = now or self._clock.now()
        done = await self._time_out(now)
        done += await self._send(now)
        done += await self._poll(now)
        return done

    async def _venue(self, venue_id: str) -> Venue:
        async with self._uow() as uow:
            config = await uow.venues.get_venue(venue_id)
        if config is None:
            raise VenueUnavailable(f"venue {venue_id} no longer exists")
        if not config.enabled:
            raise VenueUnavailable(f"venue {venue_id} is disabled")
        return self.connector.venue(config, self._credentials(config))

    async def _time_out(self, now: datetime) -> int:
        async with self._uow() as uow:
            due = await uow.venues.claim_external_orders(_UNFINISHED, self.batch, due_before=now)
            for order in due:
                await uow.venues.save_external_order(order.moved(_S.TIMED_OUT, now))
                await uow.notifications.add_admin(_timeout_notification(order, now))
            await uow.commit()
        for order in due:
            if order.status is not _S.NEW:  # sent: the venue may have it; ask it to stop
                await self._cancel(order, now)
        return len(due)

    async def _cancel(self, order: ExternalOrder, now: datetime) -> None:
        try:
            venue = await self._venue(order.venue_id)
            report = await venue.cancel(order.ref)
        except VenueError as e:
            await self._record(order.external_order_id, now, error=f"cancel: {error_text(e)}")
            return
        await self._record(order.external_order_id, now, report=report)

    async def _send(self, now: datetime) -> int:
        async with self._uow() as uow:
            claimed = await uow.venues.claim_external_orders((_S.NEW,), self.batch)
            sent = [o.moved(_S.SENT, now, sent_at=now, attempts=o.attempts + 1) for o in claimed]
            for order in sent:
                await uow.venues.save_external_order(order)
            await uow.commit()
        for order in sent:
            try:
                venue = await self._venue(order.venue_id)
                report = await venue.place(
                    VenueOrderRequest(order.external_order_id, order.venue_symbol, order.side, order.amount)
                )
            except VenueRejected as e:
                await self._record(order.external_order_id, now, error=error_text(e), rejected=True)
            except VenueError as e:
                await self._record(order.external_order_id, now, error=error_text(e))
            else:
                await self._record(order.external_order_id, now, report=report)
        return len(sent)

    async def _poll(self, now: datetime) -> int:
        async with self._uow() as uow:
            waiting = await uow.venues.claim_external_orders(tuple(AWAITING_VENUE), self.batch)
            await uow.commit()
        for order in waiting:
            try:
                venue = await self._venue(order.venue_id)
                report = await venue.get(order.ref)
            except VenueError as e:
                await self._record(order.external_order_id, now, error=error_text(e))
            else:
                await self._record(order.external_order_id, now, report=report)
        return len(waiting)

    async def _record(
        self,
        external_order_id: str,
        now: datetime,
        *,
        report: Any = None,
        error: str | None = None,
        rejected: bool = False,
    ) -> None:
        """A venue's answer (``report``) or failure (``error``) on the order as it is now."""
        async with self._uow() as uow:
            order = await uow.venues.get_external_order(external_order_id, for_update=True)
            if order is None:
                return
            if report is not None:
                updated = order.reported(report, now)
            elif rejected and order.status not in FINAL:
                updated = order.moved(_S.REJECTED, now, last_error=error)
            else:
                updated = replace(order, updated_at=now, last_error=error)
            await uow.venues.save_external_order(updated)
            await uow.commit()


def _timeout_notification(order: ExternalOrder, now: datetime) -> Any:
    details: Mapping[str, Any] = {
        "externalOrderId": order.external_order_id,
        "lpOrderId": order.lp_order_id,
        "orderId": str(order.order_id),
        "venueId": order.venue_id,
        "venueSymbol": order.venue_symbol,
        "marketId": order.market_id,
        "accountId": order.account_id,
        "side": order.side.value,
        "amount": format_decimal(order.amount),
        "filledAmount": format_decimal(order.filled),
        "statusBefore": order.status.value,
        "lastError": order.last_error,
    }
    return admin_notification(
        AdminNotificationType.EXTERNAL_ORDER_TIMEOUT,
        TIMEOUT_TITLE,
        f"Hedge order {order.external_order_id} ({order.side.value} {format_decimal(order.amount)}"
        f" {order.venue_symbol} at venue {order.venue_id}, market {order.market_id}) was not filled by"
        f" {iso_millis(order.timeout_at)} (it was {order.status.value}); it is cancelled at the venue"
        " where possible.",
        details,
        now,
        dedupe_key=f"external-order-timeout:{order.external_order_id}",
    )
