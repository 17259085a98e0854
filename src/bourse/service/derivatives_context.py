"""What the derivatives use cases read around a position: the market's contract, the root-asset
(RAT) rate of an asset, the account's collateral, the marks, the account group's levels.

Only reads in the caller's unit of work; the maths over them is ``bourse.domain.margin``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bourse.domain.account_groups import DEFAULT_MARGIN_CALL_LEVEL, DEFAULT_STOP_OUT_LEVEL
from bourse.domain.errors import NotFound
from bourse.domain.fees import CommissionRule, min_fee_in_asset
from bourse.domain.history import Rates as RootRates
from bourse.domain.history import rates_to_root
from bourse.domain.ledger import Bucket, account_owner
from bourse.domain.margin import Collateral, PositionMark
from bourse.domain.markets import Market, MarketType
from bourse.domain.positions import ContractSpec, Position
from bourse.domain.values import AccountId, AssetId
from bourse.service.ports import UnitOfWork

DERIVATIVE_TYPES = (MarketType.CFD, MarketType.PERPETUAL)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Contract:
    """A derivative market with its contract and settlement asset scale."""

    market: Market
    spec: ContractSpec

    @property
    def settlement_asset(self) -> AssetId:
        return self.spec.settlement_asset


@dataclass(frozen=True, slots=True)
class Levels:
    margin_call: Decimal
    stop_out: Decimal


class Rates:
    """Prices in the root asset, read once per unit of work: the platform's one conversion, the
    same as every ``...InRAT`` of the history server (``domain.history.rates_to_root`` over the
    latest trade of every market: directly, or through one intermediate market). The root is 1;
    an asset without such a price has none (None)."""

    def __init__(self, uow: UnitOfWork, root: AssetId) -> None:
        self._uow = uow
        self.root = root
        self._rates: RootRates | None = None

    async def get(self, asset: AssetId) -> Decimal | None:
        if asset == self.root:
            return ONE
        if self._rates is None:
            history = self._uow.history
            self._rates = rates_to_root(self.root, await history.asset_ids(), await history.last_prices())
        return self._rates.rate(asset)


async def order_min_fee(rule: CommissionRule, c: Contract, rates: Rates) -> Decimal | None:
    """The rule's ``minFeeRAT`` in the market's settlement asset now (``fees.min_fee_in_asset``):
    fixed with an order when it is placed. None without a minimum, or when the settlement asset
    has no RAT rate (such an order pays no minimum rather than being refused)."""
    if rule.min_fee_rat is None:
        return None
    return min_fee_in_asset(rule.min_fee_rat, await rates.get(c.settlement_asset), c.spec.settlement_scale)


async def contract(uow: UnitOfWork, market_id: str) -> Contract:
    """The derivative market ``market_id``; NotFound for no market, a Spot one is refused by the caller."""
    market = await uow.markets.get(market_id)
    if market is None:
        raise NotFound(f"market {market_id} not found", field="marketId")
    return await contract_of(uow, market)


async def contract_of(uow: UnitOfWork, market: Market) -> Contract:
    asset = await uow.assets.get(market.quote_asset)
    scale = asset.scale if asset is not None else 18
    return Contract(market, ContractSpec.of(market, scale))


async def contracts(uow: UnitOfWork, market_ids: Iterable[str]) -> dict[str, Contract]:
    out: dict[str, Contract] = {}
    for market_id in sorted(set(market_ids)):
        market = await uow.markets.get(market_id)
        if market is not None:
            out[market_id] = await contract_of(uow, market)
    return out


async def levels(uow: UnitOfWork, account_id: AccountId) -> Levels:
    """The margin call and stop-out levels of the account's group."""
    group_id = await uow.account_groups.group_of_account(account_id)
    group = None if group_id is None else await uow.account_groups.get(group_id)
    if group is None:
        return Levels(DEFAULT_MARGIN_CALL_LEVEL, DEFAULT_STOP_OUT_LEVEL)
    return Levels(group.margin_call_level, group.stop_out_level)


def selected_assets(
    root: AssetId, selection: dict[AssetId, bool], ratios: dict[AssetId, Decimal]
) -> list[AssetId]:
    """The account's margin assets: its explicit choices, the root asset unless unselected; an asset
    without a margin ratio is never counted (the root asset counts at 1 without one)."""
    chosen = {asset for asset, selected in selection.items() if selected}
    if selection.get(root, True):
        chosen.add(root)
    return sorted(a for a in chosen if a in ratios or a == root)


async def collateral(uow: UnitOfWork, account_id: AccountId, rates: Rates) -> list[Collateral]:
    """The account's selected margin assets: available + margin of each, its rate and ratio.
    An asset without a price in the root asset counts for nothing."""
    ratios = await uow.derivatives.margin_ratios()
    selection = await uow.derivatives.margin_selection(account_id)
    owner = account_owner(account_id)
    out = []
    for asset in selected_assets(rates.root, selection, ratios):
        rate = await rates.get(asset)
        if rate is None:
            continue
        amount = await uow.ledger.balance(owner, asset, Bucket.AVAILABLE) + await uow.ledger.balance(
            owner, asset, Bucket.MARGIN
        )
        out.append(Collateral(asset, amount, rate, ratios.get(asset, ONE)))
    return out


def mark_of(position: Position, marks: dict[str, Decimal]) -> Decimal:
    """The market's mark, or the position's entry (no PnL) before the market's first mark."""
    return marks.get(position.market_id, position.entry_price)


async def position_marks(
    positions: Sequence[Position], specs: dict[str, Contract], marks: dict[str, Decimal], rates: Rates
) -> list[PositionMark]:
    """What ``margin_state`` takes; a position whose settlement asset has no RAT price is left out."""
    out: list[PositionMark] = []
    for p in positions:
        c = specs.get(p.market_id)
        if c is None:
            continue
        rate = await rates.get(c.settlement_asset)
        if rate is None:
            continue
        out.append((p, c.spec, mark_of(p, marks), rate))
    return out
