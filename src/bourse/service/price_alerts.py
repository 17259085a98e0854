"""Price alerts ("marketPrice" notification subscriptions) and the consumer that fires them.

A trader sets an alert on one of their accounts: a market, a price on its tick grid and
a condition (Gte: the last price at or above it; Lte: at or below). The alert is armed
after the market's latest trade; the first later trade that meets the condition fires
it, once: the alert is marked fired and a ``MarketPrice`` trader notification is stored
in one transaction (``uow.price_alerts.fire`` decides and marks in one statement, so two
consumers can never fire one alert twice), then published as ``notifications.<uid>``.

In: ``trades.<marketId>`` from the bus. The trades table is the truth: at start and
whenever the bus dropped the consumer, every trade after each market's progress is
checked from the table first (``catch_up``), so an alert is not missed while no
consumer ran.

Setting and deleting alerts are audited in their transaction (``price_alert.created``,
``price_alert.deleted``, one entry per alert, subject ``price_alert:<id>``); firing is recorded by
the notification it stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import BusinessRejection, InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import MARKET_ID_RE
from bourse.domain.notifications import (
    MAX_ALERTS_PER_ACCOUNT,
    MAX_PAGE,
    Notification,
    PriceAlert,
    Trade,
    alert_json,
    alerts_by_market,
    fired_notification,
    parse_alert_price,
    parse_condition,
)
from bourse.domain.values import AccountId
from bourse.service.accounts import AccountService
from bourse.service.context import RequestMeta
from bourse.service.marketdata import parse_trade_event
from bourse.service.notifications import NotificationService
from bourse.service.ports import Clock, EventBus, SubscriptionDropped, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("bourse.price_alerts")

CATCH_UP_PAGE = 5000
DEFAULT_MARKETS_PAGE = 50


def parse_market_id(value: object, field: str = "marketId") -> str:
    if not isinstance(value, str) or not MARKET_ID_RE.match(value):
        raise InvalidInput(f"{field} must be a market id, e.g. BTCUSDT", field=field)
    return value


class PriceAlertService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        bus: EventBus,
        accounts: AccountService,
        notifications: NotificationService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._bus = bus
        self._accounts = accounts
        self._notifications = notifications
        self.bus_buffer = 10_000  # trade events waiting for the consumer before the bus drops it

    async def _account(self, principal: Principal, account_id: str | None) -> AccountId:
        principal.require(Operation.TRADING_UI)
        if not account_id:
            raise InvalidInput("the accountId header is required", field="accountId")
        return (await self._accounts.owned_account(principal, account_id)).account_id

    # --- the trader's subscriptions ---------------------------------------------------------------

    async def subscribe(
        self,
        principal: Principal,
        account_id: str | None,
        market_id: object,
        price: object,
        condition: object,
        meta: RequestMeta | None = None,
    ) -> PriceAlert:
        account = await self._account(principal, account_id)
        market_id = parse_market_id(market_id)
        kind = parse_condition(condition)
        async with self._uow() as uow:
            market = await uow.markets.get(market_id)
            if market is None:
                raise NotFound(f"market {market_id} not found", field="marketId")
            target = parse_alert_price(price, market.tick_size)
            await uow.price_alerts.lock_account(account)
            if await uow.price_alerts.count_active(account) >= MAX_ALERTS_PER_ACCOUNT:
                raise BusinessRejection(
                    f"at most {MAX_ALERTS_PER_ACCOUNT} active price alerts per account",
                    field="marketId",
                    limit=MAX_ALERTS_PER_ACCOUNT,
                )
            alert = await uow.price_alerts.add(
                principal.uid, account, market_id, target, kind, self._clock.now()
            )
            await _audit(uow, principal, AuditAction.PRICE_ALERT_CREATED, alert, meta)
            await uow.commit()
        return alert

    async def by_markets(
        self,
        principal: Principal,
        account_id: str | None,
        market_ids: Sequence[object] | None,
        limit: object = None,
        offset: object = None,
    ) -> list[dict[str, Any]]:
        """The account's active alerts grouped by market: the markets asked for (in that order), or every
        market with an active alert (by id); ``offset``/``limit`` page over those markets."""
        account = await self._account(principal, account_id)
        size = _int(limit, "limit", DEFAULT_MARKETS_PAGE, 1, MAX_PAGE)
        skip = _int(offset, "offset", 0, 0, 1_000_000)
        wanted: list[str] | None = None
        if market_ids:
            wanted = list(
                dict.fromkeys(parse_market_id(m, f"marketIds[{i}]") for i, m in enumerate(market_ids))
            )
        async with self._uow() as uow:
            markets = wanted if wanted is not None else await uow.price_alerts.active_markets(account)
            page = markets[skip : skip + size]
            alerts = await uow.price_alerts.active(account, page) if page else []
        return alerts_by_market(page, alerts)

    async def unsubscribe(
        self,
        principal: Principal,
        account_id: str | None,
        ids: Sequence[int],
        meta: RequestMeta | None = None,
    ) -> int:
        """Delete the account's alerts among ``ids``; ids that are not (or no longer) the account's are
        ignored, so a repeat, or an alert that fired meanwhile, is not an error."""
        account = await self._account(principal, account_id)
        if not ids:
            return 0
        async with self._uow() as uow:
            await uow.price_alerts.lock_account(account)
            deleted = await uow.price_alerts.delete(account, ids)
            for alert in deleted:
                await _audit(uow, principal, AuditAction.PRICE_ALERT_DELETED, alert, meta)
            await uow.commit()
        return len(deleted)

    # --- firing -----------------------------------------------------------------------------------

    async def fire(self, market_id: str, trades: Sequence[Trade]) -> list[Notification]:
        """Fire every alert of the market that ``trades`` cross; store and publish their notifications."""
        if not trades:
            return []
        now = self._clock.now()
        async with self._uow() as uow:
            fired = await uow.price_alerts.fire(market_id, trades, now)
            stored = await uow.notifications.add_trader([fired_notification(f, now) for f in fired])
            await uow.commit()
        self._notifications.publish([(f.alert.uid, n) for f, n in zip(fired, stored, strict=True)])
        return stored

    async def on_trade(self, event: Mapping[str, Any]) -> list[Notification]:
        """One ``trades.<marketId>`` event of the exchange contract."""
        tick = parse_trade_event(event)
        return await self.fire(tick.market_id, [Trade(tick.trade_id, tick.price)])

    async def catch_up(self) -> int:
        """Check every trade after each market's progress against its active alerts; how many fired."""
        async with self._uow() as uow:
            starts = await uow.price_alerts.catch_up_from()
        fired = 0
        for market_id, after in sorted(starts.items()):
            while True:
                async with self._uow() as uow:
                    page = await uow.marketdata.trades_after(market_id, after, CATCH_UP_PAGE)
                if not page:
                    break
                fired += len(await self.fire(market_id, [Trade(t.trade_id, t.price) for t in page]))
                after = page[-1].trade_id
                if len(page) < CATCH_UP_PAGE:
                    break
        return fired

    async def run(self) -> None:
        """Consume the bus until cancelled: subscribe first, then catch up, so no trade falls between."""
        while True:
            subscription = self._bus.subscribe("trades.*", maxsize=self.bus_buffer)
            try:
                await self.catch_up()
                while True:
                    _, event = await subscription.get()
                    try:
                        await self.on_trade(event)
                    except (InvalidInput, KeyError) as e:
                        log.warning("trade event skipped", event_body=dict(event), error=str(e))
            except SubscriptionDropped as e:
                log.warning("price alerts fell behind the trades bus; catching up", reason=str(e))
            finally:
                subscription.close()


async def _audit(
    uow: UnitOfWork, principal: Principal, action: AuditAction, alert: PriceAlert, meta: RequestMeta | None
) -> None:
    meta = meta or RequestMeta()
    details = {"accountId": alert.account_id, "marketId": alert.market_id, **alert_json(alert)}
    await uow.audit.append(
        AuditEntry(principal.username, action, f"price_alert:{alert.id}", meta.request_id, meta.ip, details)
    )


def _int(value: object, field: str, default: int, least: int, most: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidInput(f"{field} must be an integer from {least} to {most}", field=field)
    return value
