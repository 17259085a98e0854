"""Helpers for derivatives tests: a Dealer Cfd market priced by a manual source, funded traders
(hedging or netting accounts), balances by bucket, orders and closes through the service."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bourse.domain.ledger import FEES, HOUSE, Bucket, account_owner
from bourse.domain.markets import MarketType
from bourse.domain.orders import OrderType, Side, TimeInForce
from bourse.domain.positions import MarginType
from bourse.domain.values import AccountId
from bourse.service.context import RequestMeta
from bourse.service.derivatives import OrderView
from bourse.service.derivatives_records import DerivativeOrderRequest, TriggerRequest
from tests.integration.trading.support import ADMIN, USDT, Trader, deposit, make_market, make_trader

D = Decimal

CFD = {
    "type": "Cfd",
    "baseAssetId": "BTC",
    "quoteAssetId": "USDT",
    "priceScale": 2,
    "amountScale": 2,
    "tickSize": "0.01",
    "lotStep": "0.01",
    "minAmount": "0.01",
    "lotSize": 1,
    "minLotAmount": "0.01",
    "maxLotAmount": 100,
    "maxLeverage": 100,
    "isConstLeverage": False,
}


async def make_cfd(
    container: Any,
    market_id: str = "BTCCFD",
    *,
    bid: str = "100",
    ask: str = "100",
    markup: str = "0",
    **fields: Any,
) -> str:
    """A Dealer Cfd market whose manual source quotes ``bid``/``ask``, priced once (quote and mark)."""
    await make_market(container, **{**CFD, "marketId": market_id, **fields})
    await set_price(container, market_id, bid, ask, markup=markup)
    return market_id


async def set_price(container: Any, market_id: str, bid: str, ask: str, *, markup: str = "0") -> None:
    """Move the manual source and run one pricing tick (the quote at once; the mark smoothed)."""
    await container.pricing.set_price_source(
        ADMIN,
        market_id,
        {"executionMode": "Dealer", "sourceKind": "Manual", "bid": bid, "ask": ask, "markupRate": markup},
        RequestMeta(),
    )
    await container.pricing.tick()


async def netting_trader(container: Any, name: str, *, usdt: str = "0") -> Trader:
    """A user whose trading account is a Netting account (funded with ``usdt``)."""
    created = await container.identity.create_user(name, f"{name}-pass-123")
    account = await container.accounts.open_account(
        ADMIN, created.user.uid, f"{name} netting", "Netting", None, RequestMeta()
    )
    trader = Trader(created_principal(created, name), account.account_id)
    await deposit(container, account.account_id, USDT, D(usdt))
    return trader


def created_principal(created: Any, name: str) -> Any:
    from bourse.domain.identity import Principal

    return Principal.of(created.user.uid, name, created.user.roles)


async def hedging_trader(container: Any, name: str, *, usdt: str = "0") -> Trader:
    return await make_trader(container, name, usdt=usdt)


def order(
    market: str,
    side: str,
    lots: str,
    price: str | None = None,
    *,
    type: str | None = None,
    leverage: int | None = None,
    margin_type: str = "Cross",
    activation: str | None = None,
    tif: str = "Gtc",
    tp: str | None = None,
    sl: str | None = None,
    trailing: bool = False,
    client_order_id: str | None = None,
    expires: Any = None,
) -> DerivativeOrderRequest:
    kind = OrderType(type) if type else (OrderType.LIMIT if price is not None else OrderType.MARKET)
    return DerivativeOrderRequest(
        market_id=market,
        side=Side(side),
        type=kind,
        lots=D(lots),
        price=None if price is None else D(price),
        activation_price=None if activation is None else D(activation),
        time_in_force=TimeInForce(tif),
        cancellation_date=expires,
        leverage=leverage,
        margin_type=MarginType(margin_type),
        triggers=TriggerRequest(
            take_profit=None if tp is None else D(tp),
            stop_loss=None if sl is None else D(sl),
            trailing=trailing,
        ),
        client_order_id=client_order_id,
    )


async def place(container: Any, trader: Trader, *args: Any, product: str = "Cfd", **kwargs: Any) -> OrderView:
    view: OrderView = await container.derivatives.place(
        trader.principal, trader.account_id, MarketType(product), order(*args, **kwargs)
    )
    return view


@dataclass(frozen=True)
class Money:
    available: Decimal
    margin: Decimal


async def money(container: Any, account: AccountId | str) -> Money:
    async with container.uow() as uow:
        owner = account_owner(account)
        return Money(
            Decimal(await uow.ledger.balance(owner, USDT, Bucket.AVAILABLE)).normalize(),
            Decimal(await uow.ledger.balance(owner, USDT, Bucket.MARGIN)).normalize(),
        )


async def house(container: Any) -> Decimal:
    async with container.uow() as uow:
        return Decimal(await uow.ledger.balance(HOUSE, USDT, Bucket.AVAILABLE)).normalize()


async def fees(container: Any) -> Decimal:
    async with container.uow() as uow:
        return Decimal(await uow.ledger.balance(FEES, USDT, Bucket.AVAILABLE)).normalize()
