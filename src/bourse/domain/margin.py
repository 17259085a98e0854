"""Account margin: equity, used margin and margin level in the root asset (RAT), margin calls,
the stop-out order and the cross liquidation price.

Cross positions share the account's collateral:

    equity = sum over the selected margin assets of (available + margin - isolated margin)
             * rate_to_RAT * marginRatio
           + sum over open Cross positions of unrealized PnL * rate_to_RAT(settlement asset)
    used   = sum over open Cross positions of margin * rate_to_RAT(settlement asset)
    level  = equity / used          (None when nothing is used: no Cross position)

The margin an Isolated position holds backs that position only, so it is taken out of its
settlement asset's collateral here; an Isolated position has its own level
``(margin + upnl) / margin`` (``isolated_level``).

A margin call is raised once per crossing below the call level (``margin_call_due``); below the
stop-out level positions are closed one at a time, biggest unrealized loss first
(``stop_out_order``), re-evaluating the level after each close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, localcontext

from bourse.domain.positions import (
    EXACT,
    ZERO,
    ContractSpec,
    MarginType,
    Position,
    round_half_even,
    round_to,
)
from bourse.domain.values import AssetId

# A level is a ratio of two RAT amounts; 18 decimals (rounded down, towards the stop-out) is what
# NUMERIC(38, 18) keeps and far finer than any configured level.
LEVEL_SCALE = 18

# (position, its market's contract, the market's mark price, rate_to_RAT of the settlement asset)
PositionMark = tuple[Position, ContractSpec, Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Collateral:
    """One selected margin asset: ``amount`` = its available + margin buckets."""

    asset_id: AssetId
    amount: Decimal
    rate_to_rat: Decimal
    ratio: Decimal  # the asset's marginRatio (1 = counted in full)


@dataclass(frozen=True, slots=True)
class MarginState:
    equity: Decimal  # RAT
    used: Decimal  # RAT
    level: Decimal | None  # equity / used; None without Cross positions


def _level(equity: Decimal, used: Decimal) -> Decimal | None:
    if used <= 0:
        return None
    with localcontext(EXACT):
        return round_to(equity / used, LEVEL_SCALE, ROUND_DOWN)


def _collateral_value(collateral: Sequence[Collateral], positions: Sequence[PositionMark]) -> Decimal:
    isolated: dict[str, Decimal] = {}
    for position, spec, _mark, _rate in positions:
        if position.is_open and position.margin_type is MarginType.ISOLATED:
            isolated[spec.settlement_asset] = isolated.get(spec.settlement_asset, ZERO) + position.margin
    total = ZERO
    with localcontext(EXACT):
        for c in collateral:
            amount = max(ZERO, c.amount - isolated.get(c.asset_id, ZERO))
            total += amount * c.rate_to_rat * c.ratio
    return total


def margin_state(collateral: Sequence[Collateral], positions: Sequence[PositionMark]) -> MarginState:
    """The account's cross margin state at the given marks (Isolated positions count only by
    taking their margin out of the collateral)."""
    equity = _collateral_value(collateral, positions)
    used = ZERO
    with localcontext(EXACT):
        for position, spec, mark, rate in positions:
            if position.is_open and position.margin_type is MarginType.CROSS:
                equity += position.unrealized_pnl(mark, spec) * rate
                used += position.margin * rate
    return MarginState(equity, used, _level(equity, used))


def isolated_level(position: Position, spec: ContractSpec, mark: Decimal) -> Decimal | None:
    """An Isolated position's own level ``(margin + upnl) / margin`` (None once closed)."""
    if not position.is_open:
        return None
    with localcontext(EXACT):
        return _level(position.margin + position.unrealized_pnl(mark, spec), position.margin)


def margin_call_due(level: Decimal | None, call_level: Decimal, armed: bool) -> tuple[bool, bool]:
    """(notify now, armed after): notify when the level is below ``call_level`` and the call is
    armed; it re-arms once the level is back at or above it (or there is no level)."""
    if level is not None and level < call_level:
        return armed, False
    return False, True


def stop_out_due(level: Decimal | None, stop_out_level: Decimal) -> bool:
    return level is not None and level < stop_out_level


def maintenance_margin(position: Position, spec: ContractSpec, stop_out_level: Decimal) -> Decimal:
    """The equity a position needs to stay open: ``margin * stopOutLevel``, rounded up to the
    settlement scale. Below it an Isolated position is stopped out on its own; for Cross positions the
    account is stopped out when its equity falls below the sum of them (level < stopOutLevel)."""
    with localcontext(EXACT):
        return round_to(position.margin * stop_out_level, spec.settlement_scale, ROUND_CEILING)


def stop_out_order(positions_with_pnl: Sequence[tuple[Position, Decimal]]) -> list[str]:
    """Position ids in the order a stop-out closes them: biggest unrealized loss first (the PnL
    given, in RAT), ties oldest first, then by id."""
    ordered = sorted(positions_with_pnl, key=lambda pp: (pp[1], pp[0].opened_at, pp[0].position_id))
    return [p.position_id for p, _ in ordered if p.is_open]


def liquidation_price_cross(
    collateral: Sequence[Collateral],
    positions: Sequence[PositionMark],
    market_id: str,
    stop_out_level: Decimal,
) -> Decimal | None:
    """The price of ``market_id`` at which the account's cross level reaches ``stop_out_level``,
    every other price held at its mark (collateral rates included); half-even to the market's
    price scale. None without Cross positions on that market, when they cancel out (as much
    long as short), or when the price would be zero or below (never reached)."""
    state = margin_state(collateral, positions)
    if state.used <= 0:
        return None
    slope = ZERO
    mark: Decimal | None = None
    spec: ContractSpec | None = None
    with localcontext(EXACT):
        for position, pspec, pmark, rate in positions:
            if (
                position.is_open
                and position.margin_type is MarginType.CROSS
                and position.market_id == market_id
            ):
                slope += position.side.sign * position.base(pspec) * rate
                mark, spec = pmark, pspec
        if mark is None or spec is None or slope == 0:
            return None
        # equity(P) = equity(mark) + slope * (P - mark) = stop_out_level * used
        price = mark + (stop_out_level * state.used - state.equity) / slope
    if price <= 0:
        return None
    return round_half_even(price, spec.price_scale)


# --- paying a Cross shortfall with other collateral ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Seizable:
    """Another selected margin asset of the account: what is available of it, its price in the
    settlement asset, its margin ratio and its scale."""

    asset_id: AssetId
    available: Decimal
    rate: Decimal  # one unit of the asset in the settlement asset
    ratio: Decimal
    scale: int


@dataclass(frozen=True, slots=True)
class Seizure:
    asset_id: AssetId
    amount: Decimal  # of the asset, at its scale
    rate: Decimal
    value: Decimal  # amount * rate, in the settlement asset (exact)


def seize(
    shortfall: Decimal, assets: Sequence[Seizable], settlement_scale: int
) -> tuple[list[Seizure], Decimal]:
    """What a Cross loss the settlement asset could not cover (``shortfall`` > 0) takes from the
    account's other margin assets, and what is left (the deficit, rounded UP to the settlement
    scale: never understating what the house absorbs). The assets that counted in the level pay
    for it: highest margin ratio first (ties by asset id); of each ``shortfall / rate`` rounded UP
    to its scale (the house is not short by a rounding), at most its available."""
    seized: list[Seizure] = []
    left = shortfall
    with localcontext(EXACT):
        for a in sorted(assets, key=lambda a: (-a.ratio, a.asset_id)):
            if left <= 0:
                break
            if a.rate <= 0 or a.available <= 0:
                continue
            amount = min(round_to(left / a.rate, a.scale, ROUND_CEILING), a.available)
            if amount <= 0:
                continue
            value = amount * a.rate
            seized.append(Seizure(a.asset_id, amount, a.rate, value))
            left -= value
    rest = ZERO if left <= 0 else round_to(left, settlement_scale, ROUND_CEILING)
    return seized, rest
