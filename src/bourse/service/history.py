"""The history server (brokerage ``/api/...``): read-only queries over orders, trades, balances,
commissions and transfers, for staff, and the caller's own order history for traders.

Each call is one read-only snapshot (REPEATABLE READ, READ ONLY, a statement timeout): a page and
its total, and the rates used to convert into the root asset, come from the same moment. Each
method checks its operation itself too, so a caller other than the HTTP routes (reports) cannot
skip it. Bodies are validated by ``domain.history`` (unknown fields are 400, never ignored).

``external_orders`` lists the hedge orders sent to external venues for Dealer fills
(``service/hedging.py``, table ``external_orders``; ``orderStatus`` is the external order state).
No spot order is unsolicited yet (stop-outs and liquidations of derivatives are their own
orders), so ``unsolicited_trades`` finds none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.history import (
    OWN_ORDER_FIELDS,
    SCHEMAS,
    QueryKind,
    Rates,
    parse_own_orders,
    parse_query,
    plain,
    rates_to_root,
    render_row,
)
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import MarketType
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.service.ports import UnitOfWork, UnitOfWorkFactory

READ_TIMEOUT_MS = 30_000
_K = QueryKind


@dataclass(frozen=True, slots=True)
class Page:
    """Rows in the response's shape (amounts Decimal), whether more matched than the limit, and for
    open orders the number matching the filters."""

    rows: list[dict[str, Any]]
    exceeded: bool
    total: int | None = None


class HistoryService:
    def __init__(self, uow: UnitOfWorkFactory, root_asset: str, timeout_ms: int = READ_TIMEOUT_MS) -> None:
        self._uow = uow
        self.root_asset = AssetId(root_asset)
        self._timeout_ms = timeout_ms

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[tuple[UnitOfWork, Rates]]:
        async with self._uow() as uow:
            await uow.history.read_only(self._timeout_ms)
            prices = await uow.history.last_prices()
            rates = rates_to_root(self.root_asset, await uow.history.asset_ids(), prices)
            yield uow, rates

    async def rates(self) -> Rates:
        """The rates into the root asset as of now (what every ``...InRAT`` uses)."""
        async with self._reading() as (_, rates):
            return rates

    async def _page(
        self,
        principal: Principal,
        operation: Operation,
        kind: QueryKind,
        body: object,
        *,
        total: bool = False,
    ) -> Page:
        principal.require(operation)
        query = parse_query(kind, body)
        async with self._reading() as (uow, rates):
            rows = await uow.history.rows(query, rates)
            count = await uow.history.count(query, rates) if total else None
        fields = SCHEMAS[kind].fields
        return Page([render_row(fields, r) for r in rows[: query.limit]], len(rows) > query.limit, count)

    async def run(self, principal: Principal, kind: QueryKind, body: object) -> Page:
        """Any row query by kind (for reports), with the operation its route requires."""
        if not SCHEMAS[kind].rows:
            raise InvalidInput(f"{kind.value} answers one value, not rows", field="source")
        return await self._page(principal, OPERATIONS[kind], kind, body, total=kind is _K.OPEN_ORDERS)

    # --- accounts and balances ------------------------------------------------------------------

    async def active_accounts(self, principal: Principal, body: object) -> int:
        """Accounts with at least one execution matching the filters (period, market, user, account)."""
        principal.require(Operation.VIEW_ACTIVE_ACCOUNTS)
        query = parse_query(_K.ACTIVE_ACCOUNTS, body)
        async with self._reading() as (uow, rates):
            return await uow.history.count(query, rates)

    async def user_balance(self, principal: Principal, user_id: str) -> Decimal:
        """All the user's cash balances in RAT; assets without a price are left out."""
        principal.require(Operation.VIEW_BALANCES)
        if not user_id.isascii() or not user_id.isdigit() or len(user_id) > 18:
            raise InvalidInput("userId must be a user id", field="userId")
        async with self._reading() as (uow, rates):
            total = await uow.history.user_balance_in_rat(UserId(int(user_id)), rates)
        if total is None:
            raise NotFound(f"user {user_id} not found", field="userId")
        return plain(total)

    async def user_balances(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_BALANCES, _K.BALANCES, body)

    async def account_balances(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_BALANCES, _K.ACCOUNT_BALANCES, body)

    async def billing_info(self, principal: Principal, body: object) -> dict[str, Any]:
        """Active accounts and traded volume of the period; Perpetual volume counts in the total only."""
        principal.require(Operation.VIEW_BILLING_INFO)
        query = parse_query(_K.BILLING_INFO, body)
        async with self._reading() as (uow, rates):
            totals = await uow.history.billing(query, rates)
        volume = totals.volume_in_rat
        return {
            "activeAccounts": totals.active_accounts,
            "rootAsset": self.root_asset,
            "tradedVolumeSpotInRAT": plain(volume.get(MarketType.SPOT.value, Decimal(0))),
            "tradedVolumeCfdInRAT": plain(volume.get(MarketType.CFD.value, Decimal(0))),
            "tradedVolumeTotalInRAT": plain(sum(volume.values(), Decimal(0))),
        }

    # --- commissions and markups ------------------------------------------------------------------

    async def commissions_accounts_assets(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_COMMISSIONS, _K.COMMISSIONS_ACCOUNTS_ASSETS, body)

    async def commissions_users_assets(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_COMMISSIONS, _K.COMMISSIONS_USERS_ASSETS, body)

    async def commissions_users(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_COMMISSIONS, _K.COMMISSIONS_USERS, body)

    async def commissions_accounts(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_COMMISSIONS, _K.COMMISSIONS_ACCOUNTS, body)

    async def commissions_assets(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_COMMISSIONS, _K.COMMISSIONS_ASSETS, body)

    async def markup_revenue(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_MARKUP_REVENUE, _K.MARKUP_REVENUE, body)

    # --- orders, trades, transfers ------------------------------------------------------------------

    async def open_orders(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_ORDERS, _K.OPEN_ORDERS, body, total=True)

    async def orders(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_ORDERS, _K.ORDERS, body)

    async def external_orders(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_ORDERS, _K.EXTERNAL_ORDERS, body)

    async def trades(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_TRADES, _K.TRADES, body)

    async def unsolicited_trades(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_TRADES, _K.UNSOLICITED_TRADES, body)

    async def transfers(self, principal: Principal, body: object) -> Page:
        return await self._page(principal, Operation.VIEW_TRANSFERS, _K.TRANSFERS, body)

    # --- the caller's own orders (trading-ui) ----------------------------------------------------------

    async def own_order(self, principal: Principal, order_id: str) -> dict[str, Any]:
        """One of the caller's orders (any of their accounts); anyone else's is "not found"."""
        principal.require(Operation.TRADING_UI)
        if not order_id.isascii() or not order_id.isdigit() or len(order_id) > 18:
            raise NotFound(f"order {order_id} not found", field="orderId")
        async with self._uow() as uow:
            await uow.history.read_only(self._timeout_ms)
            row = await uow.history.own_order(principal.uid, int(order_id))
        if row is None:
            raise NotFound(f"order {order_id} not found", field="orderId")
        return render_row(OWN_ORDER_FIELDS, row)

    async def own_orders(
        self, principal: Principal, account_id: str | None, body: object
    ) -> list[dict[str, Any]]:
        """The caller's orders, newest first; of one account when ``account_id`` (theirs) is given."""
        principal.require(Operation.TRADING_UI)
        query = parse_own_orders(body)
        async with self._uow() as uow:
            await uow.history.read_only(self._timeout_ms)
            account = None
            if account_id is not None:
                record = await uow.accounts.get(AccountId(account_id))
                if record is None or record.uid != principal.uid:
                    raise NotFound(f"account {account_id} not found", field="accountId")
                account = record.account_id
            rows = await uow.history.own_orders(principal.uid, account, query)
        return [render_row(OWN_ORDER_FIELDS, r) for r in rows]


OPERATIONS: dict[QueryKind, Operation] = {
    _K.ACTIVE_ACCOUNTS: Operation.VIEW_ACTIVE_ACCOUNTS,
    _K.BALANCES: Operation.VIEW_BALANCES,
    _K.ACCOUNT_BALANCES: Operation.VIEW_BALANCES,
    _K.BILLING_INFO: Operation.VIEW_BILLING_INFO,
    _K.COMMISSIONS_ACCOUNTS_ASSETS: Operation.VIEW_COMMISSIONS,
    _K.COMMISSIONS_USERS_ASSETS: Operation.VIEW_COMMISSIONS,
    _K.COMMISSIONS_USERS: Operation.VIEW_COMMISSIONS,
    _K.COMMISSIONS_ACCOUNTS: Operation.VIEW_COMMISSIONS,
    _K.COMMISSIONS_ASSETS: Operation.VIEW_COMMISSIONS,
    _K.MARKUP_REVENUE: Operation.VIEW_MARKUP_REVENUE,
    _K.OPEN_ORDERS: Operation.VIEW_ORDERS,
    _K.ORDERS: Operation.VIEW_ORDERS,
    _K.EXTERNAL_ORDERS: Operation.VIEW_ORDERS,
    _K.TRADES: Operation.VIEW_TRADES,
    _K.UNSOLICITED_TRADES: Operation.VIEW_TRADES,
    _K.TRANSFERS: Operation.VIEW_TRANSFERS,
}
