"""What every part of ``DerivativesService`` (``bourse.service.derivatives``) shares: its state,
the caller's account, and what is read around an order (product, execution mode, commission
rule, dealer quote, marks and whether they are fresh).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.fees import CommissionRule, select_rule
from bourse.domain.identity import Principal
from bourse.domain.margin import Collateral
from bourse.domain.markets import Market, MarketType
from bourse.domain.positions import ZERO, Position
from bourse.domain.pricing import DealerQuote, ExecutionMode, PriceUnavailable, is_stale
from bourse.domain.values import AccountId, AssetId
from bourse.service.accounts import AccountService
from bourse.service.derivatives_context import DERIVATIVE_TYPES, Contract, Rates
from bourse.service.derivatives_events import Changes, publish
from bourse.service.derivatives_records import FeeAssetMismatch, MarketTypeMismatch
from bourse.service.notifications import NotificationService
from bourse.service.ports import Clock, DerivativeBook, EventBus, UnitOfWorkFactory
from bourse.service.pricing import PricingService

MAX_LIMIT = 1000
# How old the spot margin pre-check's list of accounts with positions may be (may_hold_positions).
MAY_HOLD_TTL_SECONDS = 1.0
SYSTEM_ACTOR = "system:derivatives"


class DerivativesBase:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        accounts: AccountService,
        pricing: PricingService,
        root_asset: str,
        notifications: NotificationService | None = None,
        bus: EventBus | None = None,
        *,
        book: DerivativeBook | None = None,
    ) -> None:
        self._uow = uow
        # OrderBook markets: their engine runners (orders, cancels and closes go there).
        self._book = book
        self._notifications = notifications
        self._bus = bus
        self._clock = clock
        self._accounts = accounts
        self._pricing = pricing
        self._root = AssetId(root_asset)
        # ``may_hold_positions``: accounts with open positions as last read (at most a second ago,
        # one read shared by concurrent callers), and when each account last placed an order here.
        self._may_hold: set[AccountId] = set()
        self._may_hold_read: float | None = None
        # How long the set of accounts holding positions is trusted (tests lengthen it).
        self.may_hold_ttl = MAY_HOLD_TTL_SECONDS
        self._may_hold_reading: asyncio.Future[None] | None = None
        self._placed_at: dict[AccountId, float] = {}
        self._unpriced_logged: dict[AccountId, list[str]] = {}

    def _publish(self, changes: Sequence[Changes]) -> None:
        """Tell the bus what a committed use case changed (derivative-orders, positions, balances)."""
        publish(self._bus, self._clock.now(), changes)

    # --- who ---------------------------------------------------------------------------------

    async def account(self, principal: Principal, account_id: str | None) -> AccountId:
        """The caller's own account named by the ``accountId`` header; 404 for anyone else's."""
        if not account_id:
            raise InvalidInput("the accountId header is required", field="accountId")
        return (await self._accounts.owned_account(principal, account_id)).account_id

    async def account_or_default(self, principal: Principal, account_id: str | None) -> AccountId:
        """The header's account, else the caller's default account (routes the spec gives no header)."""
        if account_id:
            return await self.account(principal, account_id)
        async with self._uow() as uow:
            record = await uow.accounts.default_for_user(principal.uid)
        if record is None:
            raise NotFound("the caller has no default account", field="accountId")
        return record.account_id

    # --- reading around an order -------------------------------------------------------------

    async def _order_book(self, market: Market) -> bool:
        settings = await self._pricing.settings(market.id)
        return settings is not None and settings.execution_mode is ExecutionMode.ORDER_BOOK

    @staticmethod
    def _product(market: Market, product: MarketType | None) -> None:
        if market.type not in DERIVATIVE_TYPES or (product is not None and market.type is not product):
            expected = product.value if product is not None else "Cfd or Perpetual"
            raise MarketTypeMismatch(
                f"market {market.id} is a {market.type.value} market, not {expected}", field="marketId"
            )

    @staticmethod
    def _rule(rules: list[CommissionRule] | None, c: Contract) -> CommissionRule:
        if rules is None:
            raise NotFound("account not found", field="accountId")
        rule = select_rule(rules, c.market)
        if rule.cfd is not None and rule.cfd.asset_id is not None and rule.cfd.asset_id != c.settlement_asset:
            raise FeeAssetMismatch(
                f"the commission rule {rule.id} charges derivative fees in {rule.cfd.asset_id}, but"
                f" {c.market.id} settles in {c.settlement_asset}",
                ruleId=rule.id,
            )
        return rule

    async def _quote(self, market_id: str) -> DealerQuote | None:
        try:
            return await self._pricing.dealer_quote(market_id)
        except PriceUnavailable:
            return None

    async def _mark(self, market_id: str) -> Decimal | None:
        mark = await self._pricing.mark(market_id)
        return None if mark is None else mark.mark

    async def _marks(self, market_ids: Sequence[str]) -> dict[str, Decimal]:
        if not market_ids:
            return {}
        return {m: v.mark for m, v in (await self._pricing.marks(sorted(set(market_ids)))).items()}

    async def _fresh_marks(self, market_ids: Sequence[str]) -> dict[str, Decimal]:
        """The marks no older than their market's ``stale_after_seconds`` (a market without price
        source settings has none): what a margin level may be computed from."""
        if not market_ids:
            return {}
        now = self._clock.now()
        fresh = {}
        for m, v in (await self._pricing.marks(sorted(set(market_ids)))).items():
            settings = await self._pricing.settings(m)
            if settings is not None and not is_stale(v.at, now, settings.stale_after_seconds):
                fresh[m] = v.mark
        return fresh

    @staticmethod
    async def _unpriced(
        positions: Sequence[Position], specs: dict[str, Contract], marks: dict[str, Decimal], rates: Rates
    ) -> list[str]:
        """The open positions whose level cannot be computed now: no fresh mark of their market, or
        no RAT rate of their settlement asset (counting them at their entry, or leaving them out,
        would give a wrong level)."""
        out = []
        for p in positions:
            c = specs.get(p.market_id)
            if p.is_open and (
                c is None or p.market_id not in marks or await rates.get(c.settlement_asset) is None
            ):
                out.append(p.position_id)
        return out


def _adjusted(c: Collateral, delta: Decimal) -> Collateral:
    """The collateral after a fill's realized PnL and fee (never below zero)."""
    return replace(c, amount=max(ZERO, c.amount + delta))
