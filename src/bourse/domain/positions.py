"""Derivative positions (Cfd and Perpetual): what one fill does to an account's positions and money.

A derivative market settles in its quote asset (the settlement asset): margin, PnL, fees,
funding and swaps are amounts of it. An order is sized in lots; ``base = lots * lot_size``.

- **Initial margin** ``entry * base / leverage``, rounded UP to the settlement scale, moves
  ``available -> margin`` on open and increase, and back on reduce and close: a partial close
  releases margin in proportion to the lots closed (what stays held is rounded up, so a
  position never holds less than its share); the last close releases what is left.
- **PnL**: long ``(price - entry) * base``, short ``(entry - price) * base``; realized on reduce
  and close, rounded half-even to the settlement scale, between the account and ``sys:house``.
- **Deficit**: a loss larger than what the account can pay (Isolated: the released margin of
  that position only; Cross: everything available in the settlement asset incl. the released
  margin) pays what it can; the house absorbs the rest (nothing is posted for it).
- **Netting** accounts hold one position per market: an opposite fill reduces, closes or flips
  it (close, then open the rest). **Hedging** accounts open a new position with every fill;
  a position is reduced only by a close naming it (``close_position_id``), which never flips.
- The fill's fee (``derivative_fee``: at least the rule's minimum fee, converted when the order
  was placed) goes ``available -> sys:fees``. A fill that opens anything must be paid in
  full (margin and fee) or it is refused (``InsufficientFunds``); a pure close always goes
  through and its fee is cut to what the account has left, never below zero.

One fill is one balanced ``LedgerTransaction``, with one posting per (owner, bucket).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum

from bourse.domain.errors import InsufficientFunds, InvalidInput, InvariantViolation
from bourse.domain.fees import CfdFee, CommissionRule, FeeType
from bourse.domain.ledger import FEES, HOUSE, Bucket, LedgerTransaction, Posting
from bourse.domain.ledger import account_owner as ledger_owner
from bourse.domain.markets import Market
from bourse.domain.orders import Side
from bourse.domain.values import EXACT, AccountId, AssetId

ZERO = Decimal(0)
ONE = Decimal(1)

FILL_KIND = "position.fill"
# A netting increase's average entry keeps this many decimals (what NUMERIC(38, 18) stores).
ENTRY_SCALE = 18


class PositionSide(StrEnum):
    LONG = "Long"
    SHORT = "Short"

    @classmethod
    def of(cls, side: Side) -> PositionSide:
        """The side a fill of ``side`` opens: a buy opens a long."""
        return cls.LONG if side is Side.BUY else cls.SHORT

    @property
    def sign(self) -> int:
        """+1 for a long (gains when the price rises), -1 for a short."""
        return 1 if self is PositionSide.LONG else -1

    @property
    def closing_side(self) -> Side:
        return Side.SELL if self is PositionSide.LONG else Side.BUY


class MarginType(StrEnum):
    CROSS = "Cross"
    ISOLATED = "Isolated"


class AccountKind(StrEnum):
    HEDGING = "Hedging"
    NETTING = "Netting"


class CloseReason(StrEnum):
    """Why a position was (partly) closed: the order's ``reason``."""

    TRADER = "Trader"
    TAKE_PROFIT = "TakeProfit"
    STOP_LOSS = "StopLoss"
    TRAILING_STOP = "TrailingStop"
    STOP_OUT = "StopOut"


# --- rounding ----------------------------------------------------------------------------------


def round_to(value: Decimal, scale: int, rounding: str) -> Decimal:
    """``value`` with exactly ``scale`` decimals, rounded as told (the EXACT context: no silent
    rounding to 28 digits on the way)."""
    with localcontext(EXACT):
        return value.quantize(ONE.scaleb(-scale), rounding=rounding)


def round_up(value: Decimal, scale: int) -> Decimal:
    return round_to(value, scale, ROUND_CEILING)


def round_half_even(value: Decimal, scale: int) -> Decimal:
    return round_to(value, scale, ROUND_HALF_EVEN)


# --- the contract ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What the maths needs from a derivative market."""

    market_id: str
    settlement_asset: AssetId
    lot_size: Decimal  # base units per lot
    lot_step: Decimal
    min_lots: Decimal | None
    max_lots: Decimal | None
    tick_size: Decimal
    price_scale: int
    settlement_scale: int
    max_leverage: int
    const_leverage: bool

    @classmethod
    def of(cls, market: Market, settlement_scale: int) -> ContractSpec:
        """The market's contract; ``settlement_scale`` is the scale of its quote asset.
        A missing (or 0) lotSize means 1 base unit per lot, a missing maxLeverage means 1."""
        return cls(
            market_id=market.id,
            settlement_asset=market.quote_asset,
            lot_size=Decimal(market.lot_size) if market.lot_size else ONE,
            lot_step=market.lot_step,
            min_lots=market.min_lot_amount,
            max_lots=None if market.max_lot_amount is None else Decimal(market.max_lot_amount),
            tick_size=market.tick_size,
            price_scale=market.price_scale,
            settlement_scale=settlement_scale,
            max_leverage=market.max_leverage or 1,
            const_leverage=bool(market.is_const_leverage),
        )

    def base(self, lots: Decimal) -> Decimal:
        with localcontext(EXACT):
            return lots * self.lot_size


def check_lots(spec: ContractSpec, lots: Decimal, field: str = "requestedLotAmount") -> None:
    """An order's lot amount: positive, a multiple of the lot step, within the market's limits."""
    if not lots.is_finite() or lots <= 0:
        raise InvalidInput(f"{field} must be positive", field=field)
    with localcontext(EXACT):
        off_step = lots % spec.lot_step != 0
    if off_step:
        raise InvalidInput(f"{field} must be a multiple of the lot step {spec.lot_step}", field=field)
    if spec.min_lots is not None and lots < spec.min_lots:
        raise InvalidInput(f"{field} is below the minimum of {spec.min_lots} lots", field=field)
    if spec.max_lots is not None and lots > spec.max_lots:
        raise InvalidInput(f"{field} is above the maximum of {spec.max_lots} lots", field=field)


def resolve_leverage(spec: ContractSpec, leverage: int | None) -> int:
    """The leverage an order trades at: 1..maxLeverage; a const-leverage market allows only its
    maximum (the default there); elsewhere an omitted leverage is 1."""
    if leverage is None:
        return spec.max_leverage if spec.const_leverage else 1
    if isinstance(leverage, bool) or not isinstance(leverage, int):
        raise InvalidInput("leverage must be an integer", field="leverage")
    if spec.const_leverage and leverage != spec.max_leverage:
        raise InvalidInput(f"this market trades only at leverage {spec.max_leverage}", field="leverage")
    if not 1 <= leverage <= spec.max_leverage:
        raise InvalidInput(f"leverage must be between 1 and {spec.max_leverage}", field="leverage")
    return leverage


# --- positions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Position:
    position_id: str
    account_id: AccountId
    market_id: str
    side: PositionSide
    lots: Decimal  # open lots; 0 once closed
    entry_price: Decimal  # lot-weighted over increases, ENTRY_SCALE decimals, rounded against the trader
    leverage: int
    margin_type: MarginType
    margin: Decimal  # what the margin bucket holds for it (settlement asset)
    realized_pnl: Decimal  # sum of the PnL realized by its reduces and closes (before any deficit)
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None

    def base(self, spec: ContractSpec) -> Decimal:
        return spec.base(self.lots)

    def unrealized_pnl(self, price: Decimal, spec: ContractSpec) -> Decimal:
        """Exact (unrounded) PnL of the open lots at ``price``."""
        with localcontext(EXACT):
            return self.side.sign * (price - self.entry_price) * self.base(spec)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.lots > 0

    def copy(self) -> Position:
        return replace(self)


def initial_margin(price: Decimal, base: Decimal, leverage: int, scale: int) -> Decimal:
    """``price * base / leverage`` rounded UP to ``scale``."""
    if leverage < 1:
        raise InvariantViolation("leverage must be at least 1", leverage=leverage)
    with localcontext(EXACT):
        return round_up(price * base / leverage, scale)


def notional(price: Decimal, lots: Decimal, spec: ContractSpec) -> Decimal:
    """Quote value of ``lots`` at ``price`` (exact)."""
    with localcontext(EXACT):
        return price * spec.base(lots)


def derivative_fee(
    rule_or_terms: CommissionRule | CfdFee,
    notional: Decimal,
    lots: Decimal,
    settlement_scale: int,
    min_fee: Decimal | None = None,
) -> Decimal:
    """The fee of one derivative fill: the rule's ``cfd`` settings (Percent of the notional, or
    Fixed per lot), else its spot taker size as a Percent; rounded UP to the settlement scale
    (in the house's favour, like spot fees); at least ``min_fee``, the rule's ``minFeeRAT`` in
    the settlement asset fixed with the order when it was placed (``fees.min_fee_in_asset``;
    None: no minimum, e.g. a settlement asset without a RAT rate). The minimum applies per fill."""
    if notional < 0 or lots < 0:
        raise InvariantViolation("a fill's notional and lots cannot be negative")
    if isinstance(rule_or_terms, CfdFee):
        fee_type, size = rule_or_terms.type, rule_or_terms.size
    elif rule_or_terms.cfd is not None:
        fee_type, size = rule_or_terms.cfd.type, rule_or_terms.cfd.size
    else:
        fee_type, size = FeeType.PERCENT, rule_or_terms.taker_size
    with localcontext(EXACT):
        raw = size * lots if fee_type is FeeType.FIXED else notional * size / 100
    fee = max(ZERO, round_up(raw, settlement_scale))
    return fee if min_fee is None or fee >= min_fee else min_fee


def liquidation_price_isolated(
    position: Position, spec: ContractSpec, stop_out_level: Decimal
) -> Decimal | None:
    """The mark at which the position's own level ``(margin + upnl) / margin`` reaches the
    stop-out level: long ``entry - margin*(1-s)/base``, short ``entry + margin*(1-s)/base``;
    half-even to the price scale. None for a closed position or a long that never gets there."""
    base = position.base(spec)
    if not position.is_open or base <= 0:
        return None
    with localcontext(EXACT):
        price = position.entry_price - position.side.sign * position.margin * (1 - stop_out_level) / base
    if price <= 0:
        return None
    return round_half_even(price, spec.price_scale)


# --- fills -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillResult:
    """What one fill did to the positions of one account."""

    opened: Position | None  # the new position (or the remainder of a flip)
    changed: list[Position]  # positions increased, reduced or closed (updated copies)
    closed_lots: Decimal
    realized_pnl: Decimal  # signed, rounded half-even; the part the house absorbed is ``deficit``
    margin_held: Decimal
    margin_released: Decimal
    postings: LedgerTransaction | None  # None only when nothing moved (no fee, PnL or margin)
    deficit: Decimal  # unpaid loss absorbed by the house (0 normally)
    fee: Decimal  # the fee charged (a pure close's fee is cut to what the account had)


@dataclass(slots=True)
class _Money:
    """The account's settlement-asset available while a fill is worked through, and its legs."""

    owner: str
    asset: AssetId
    available: Decimal
    legs: dict[tuple[str, str], Decimal]

    def add(self, owner: str, bucket: str, amount: Decimal) -> None:
        key = (owner, bucket)
        self.legs[key] = self.legs.get(key, ZERO) + amount

    def hold(self, amount: Decimal) -> None:
        self.add(self.owner, Bucket.AVAILABLE, -amount)
        self.add(self.owner, Bucket.MARGIN, amount)
        self.available -= amount

    def release(self, amount: Decimal) -> None:
        self.add(self.owner, Bucket.MARGIN, -amount)
        self.add(self.owner, Bucket.AVAILABLE, amount)
        self.available += amount

    def pnl(self, pnl: Decimal, pool: Decimal) -> Decimal:
        """Post ``pnl`` against the house; a loss is paid up to ``pool``. Returns the deficit."""
        paid = pnl if pnl >= 0 else -min(-pnl, pool)
        if paid:
            self.add(HOUSE, Bucket.AVAILABLE, -paid)
            self.add(self.owner, Bucket.AVAILABLE, paid)
            self.available += paid
        return paid - pnl

    def fee(self, amount: Decimal) -> None:
        if amount:
            self.add(self.owner, Bucket.AVAILABLE, -amount)
            self.add(FEES, Bucket.AVAILABLE, amount)
            self.available -= amount


def _reduce(
    position: Position, lots: Decimal, price: Decimal, spec: ContractSpec, money: _Money, now: datetime
) -> tuple[Position, Decimal, Decimal, Decimal]:
    """Close ``lots`` of ``position`` at ``price``: (updated copy, pnl, margin released, deficit)."""
    if lots <= 0 or lots > position.lots:
        raise InvariantViolation(
            "cannot close more lots than the position has", position=position.position_id
        )
    with localcontext(EXACT):
        pnl = round_half_even(
            position.side.sign * (price - position.entry_price) * spec.base(lots), spec.settlement_scale
        )
        left = position.lots - lots
        kept = round_up(position.margin * left / position.lots, spec.settlement_scale) if left else ZERO
        released = position.margin - kept
    pool_before = money.available
    money.release(released)
    pool = released if position.margin_type is MarginType.ISOLATED else pool_before + released
    deficit = money.pnl(pnl, pool)
    changed = replace(
        position,
        lots=left,
        margin=kept,
        realized_pnl=position.realized_pnl + pnl,
        updated_at=now,
        closed_at=None if left else now,
    )
    return changed, pnl, released, deficit


def apply_fill(
    *,
    kind: AccountKind,
    spec: ContractSpec,
    positions: Sequence[Position],
    side: Side,
    lots: Decimal,
    price: Decimal,
    leverage: int,
    margin_type: MarginType,
    fee: Decimal,
    available: Decimal,
    new_position_id: str,
    now: datetime,
    close_position_id: str | None = None,
    business_key: str,
    asset: AssetId,
    account_id: AccountId,
    account_owner: str | None = None,
) -> FillResult:
    """Apply one fill of ``lots`` at ``price`` to the account's ``positions`` (its open positions;
    others are ignored) and return the new state with its one ledger transaction.

    - ``close_position_id``: a reduce-only close of that position (any account kind): the fill
      must be on its closing side and at most its lots; it never opens or flips.
    - else Netting: increase the market's position (same side; its leverage and margin type must
      match), or reduce / close / flip it; Hedging: open a new position.
    - ``available``: the settlement-asset available BEFORE this fill (the deficit and funds rules).
    - ``account_owner`` defaults to the ledger owner of ``account_id``.
    Raises InvalidInput for a close that does not fit the position or a netting increase with
    another leverage or margin type, InsufficientFunds when an opening part cannot be paid.
    """
    if lots <= 0 or price <= 0 or fee < 0 or available < 0:
        raise InvariantViolation(
            "a fill needs positive lots and price, a non-negative fee and available",
            lots=str(lots),
            price=str(price),
        )
    owner = account_owner if account_owner is not None else ledger_owner(account_id)
    money = _Money(owner, asset, available, {})
    open_side = PositionSide.of(side)
    changed: list[Position] = []
    opened: Position | None = None
    closed_lots = pnl = released = held = deficit = ZERO
    to_open = ZERO
    target: Position | None = None

    with localcontext(EXACT):
        if close_position_id is not None:
            target = next((p for p in positions if p.position_id == close_position_id and p.is_open), None)
            if target is None or target.market_id != spec.market_id:
                raise InvalidInput("no such open position on this market", field="positionId")
            if target.side is open_side:
                raise InvalidInput("a close must be on the position's opposite side", field="side")
            if lots > target.lots:
                raise InvalidInput(
                    f"cannot close more than the position's {target.lots} lots",
                    field="closePositionLotAmount",
                )
        elif kind is AccountKind.NETTING:
            mine = [p for p in positions if p.is_open and p.market_id == spec.market_id]
            if len(mine) > 1:
                raise InvariantViolation(
                    "a netting account holds one position per market", market=spec.market_id
                )
            target = mine[0] if mine else None
            if target is not None and target.side is open_side:
                if target.leverage != leverage:
                    raise InvalidInput(
                        f"the open position trades at leverage {target.leverage}", field="leverage"
                    )
                if target.margin_type is not margin_type:
                    raise InvalidInput(
                        f"the open position's margin type is {target.margin_type.value}", field="marginType"
                    )
                add = initial_margin(price, spec.base(lots), leverage, spec.settlement_scale)
                total = target.lots + lots
                # Kept at the NUMERIC scale and rounded against the trader (long up, short down):
                # rounding to the price scale would realize money either way on the next close.
                entry = round_to(
                    (target.entry_price * target.lots + price * lots) / total,
                    ENTRY_SCALE,
                    ROUND_CEILING if target.side is PositionSide.LONG else ROUND_FLOOR,
                )
                changed.append(
                    replace(target, lots=total, entry_price=entry, margin=target.margin + add, updated_at=now)
                )
                held = add
                target = None  # nothing to reduce
        if target is not None:
            closing = min(lots, target.lots)
            reduced, pnl, released, deficit = _reduce(target, closing, price, spec, money, now)
            changed.append(reduced)
            closed_lots = closing
            to_open = lots - closing
        elif not changed:
            to_open = lots

        if to_open > 0:
            held = initial_margin(price, spec.base(to_open), leverage, spec.settlement_scale)
            opened = Position(
                position_id=new_position_id,
                account_id=account_id,
                market_id=spec.market_id,
                side=open_side,
                lots=to_open,
                entry_price=price,
                leverage=leverage,
                margin_type=margin_type,
                margin=held,
                realized_pnl=ZERO,
                opened_at=now,
                updated_at=now,
            )
        if held > 0:
            if money.available < held + fee:
                raise InsufficientFunds(
                    "not enough available for the margin and fee of this order",
                    required=str(held + fee),
                    available=str(money.available),
                )
            money.hold(held)
            charged = fee
        else:
            charged = min(fee, money.available)
        money.fee(charged)

    legs = tuple(
        Posting(owner, asset, bucket, amount) for (owner, bucket), amount in money.legs.items() if amount != 0
    )
    ids = [p.position_id for p in changed] + ([opened.position_id] if opened else [])
    tx = (
        LedgerTransaction(
            kind=FILL_KIND,
            postings=legs,
            business_key=business_key,
            details={"marketId": spec.market_id, "positionIds": ids},
        )
        if legs
        else None
    )
    return FillResult(
        opened=opened,
        changed=changed,
        closed_lots=closed_lots,
        realized_pnl=pnl,
        margin_held=held,
        margin_released=released,
        postings=tx,
        deficit=deficit,
        fee=charged,
    )
