"""Shared values of the derivatives unit tests: one BTC contract settled in USDT.

BTCUSD: 1 lot = 0.01 BTC, lots in steps of 1, tick 0.5 (price scale 1), USDT scale 2, leverage up to 100.
"""

from datetime import UTC, datetime
from decimal import Decimal

from bourse.domain.orders import Side
from bourse.domain.positions import (
    AccountKind,
    ContractSpec,
    FillResult,
    MarginType,
    Position,
    PositionSide,
    apply_fill,
)
from bourse.domain.values import AccountId, AssetId

D = Decimal
NOW = datetime(2025, 1, 1, tzinfo=UTC)
USDT = AssetId("USDT")
ACCOUNT = AccountId("a1")
OWNER = "acct:a1"

SPEC = ContractSpec(
    market_id="BTCUSD",
    settlement_asset=USDT,
    lot_size=D("0.01"),
    lot_step=D(1),
    min_lots=D(1),
    max_lots=D(1000),
    tick_size=D("0.5"),
    price_scale=1,
    settlement_scale=2,
    max_leverage=100,
    const_leverage=False,
)


def position(
    side: PositionSide = PositionSide.LONG,
    lots: str = "3",
    entry: str = "50000",
    margin: str = "150.00",
    *,
    position_id: str = "p1",
    leverage: int = 10,
    margin_type: MarginType = MarginType.CROSS,
    market_id: str = "BTCUSD",
    opened_at: datetime = NOW,
) -> Position:
    return Position(
        position_id=position_id,
        account_id=ACCOUNT,
        market_id=market_id,
        side=side,
        lots=D(lots),
        entry_price=D(entry),
        leverage=leverage,
        margin_type=margin_type,
        margin=D(margin),
        realized_pnl=D(0),
        opened_at=opened_at,
        updated_at=opened_at,
    )


def fill(
    positions: list[Position],
    side: Side,
    lots: str,
    price: str,
    *,
    kind: AccountKind = AccountKind.NETTING,
    leverage: int = 10,
    margin_type: MarginType = MarginType.CROSS,
    fee: str = "0",
    available: str = "1000",
    close_position_id: str | None = None,
    new_position_id: str = "p2",
) -> FillResult:
    return apply_fill(
        kind=kind,
        spec=SPEC,
        positions=positions,
        side=side,
        lots=D(lots),
        price=D(price),
        leverage=leverage,
        margin_type=margin_type,
        fee=D(fee),
        available=D(available),
        new_position_id=new_position_id,
        now=NOW,
        close_position_id=close_position_id,
        business_key="fill:1",
        asset=USDT,
        account_id=ACCOUNT,
    )


def legs(result: FillResult) -> dict[tuple[str, str], Decimal]:
    """The fill's postings as {(owner, bucket): amount}."""
    assert result.postings is not None
    return {(p.owner, str(p.bucket)): p.amount for p in result.postings.postings}
