"""Trading fees: commission profiles, their prioritized rules, and the fee of one fill.

Every account has one commission profile; a profile has exactly one default rule
and any number of rules for one market or one market group. For a trade on a
market, ``select_rule`` picks the most specific rule: a rule for that market
beats a rule for its market group beats the default rule; among rules equally
specific the lower priority number wins (then the lower id, so the choice is
deterministic).

Fees are charged in the quote asset on both sides of a trade. ``Percent`` sizes
are percentages of the fill's quote amount (``0.1`` = 0.1%); ``Fixed`` sizes
are a quote-asset amount per fill. Every fee is rounded up to the quote asset's
scale, in the house's favour, and is never negative.

``min_fee_rat`` (the spec's ``minFeeRAT``) is a minimum fee in the root asset (RAT),
charged per execution: every fill pays at least it, like a broker's "minimum
commission per trade". It is converted into the fee's asset when the order is
placed (``min_fee_in_asset``: ``minFeeRAT / rate(asset -> RAT)`` rounded UP to the
asset's scale, with the platform's one conversion, ``domain.history.rates_to_root``
over spot last prices) and fixed with the order's other fee terms, so a fill never
needs a price. An asset without a RAT rate pays no minimum (the order is not
refused). ``commission`` and ``spot_fee`` are the fee before the minimum; the
order's fee terms (``domain.trading.FeeTerms``, ``domain.positions``) apply it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext
from enum import StrEnum
from typing import Any

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.ledger import MAX_SCALE
from bourse.domain.markets import Market
from bourse.domain.values import EXACT as _EXACT
from bourse.domain.values import AssetId, decimal_places, format_decimal, parse_decimal

DEFAULT_PROFILE_ID = "default"
DEFAULT_RULE_ID = "default"
PROFILE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_PRIORITY = 2**31 - 1


class FeeType(StrEnum):
    PERCENT = "Percent"  # size is a percentage of the fill's quote amount
    FIXED = "Fixed"  # size is a quote-asset amount per fill


@dataclass(frozen=True, slots=True)
class CfdFee:
    """The spec's ``feeSettings.cfd``: stored for derivatives (issue #7), not applied to spot."""

    asset_id: AssetId | None
    type: FeeType
    size: Decimal


@dataclass(frozen=True, slots=True)
class CommissionProfile:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class CommissionRule:
    id: str
    profile_id: str
    priority: int
    is_default: bool
    market_id: str | None
    market_group_id: str | None
    fee_type: FeeType
    maker_size: Decimal
    taker_size: Decimal
    min_fee_rat: Decimal | None
    cfd: CfdFee | None = None

    def __post_init__(self) -> None:
        if self.is_default and (self.market_id or self.market_group_id):
            raise InvalidInput(
                "the default rule applies to every market; it takes no marketId or marketGroupId",
                field="marketId",
            )
        if not self.is_default and bool(self.market_id) == bool(self.market_group_id):
            raise InvalidInput("a rule needs exactly one of marketId and marketGroupId", field="marketId")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise InvalidInput(f"priority must be between 0 and {MAX_PRIORITY}", field="priority")
        for name, size in (("makerSize", self.maker_size), ("takerSize", self.taker_size)):
            check_size(self.fee_type, size, f"feeSettings.spot.{name}")
        if self.min_fee_rat is not None:
            _amount(self.min_fee_rat, "feeSettings.minFeeRAT")
        if self.cfd is not None:
            check_size(self.cfd.type, self.cfd.size, "feeSettings.cfd.size")

    @property
    def specificity(self) -> int:
        """2 = one market, 1 = a market group, 0 = the default rule."""
        return 2 if self.market_id else 1 if self.market_group_id else 0

    def applies_to(self, market: Market) -> bool:
        if self.market_id:
            return self.market_id == market.id
        if self.market_group_id:
            return self.market_group_id == market.market_group_id
        return True


def _amount(value: Decimal, field: str) -> None:
    if not value.is_finite() or value < 0 or value >= Decimal(10) ** 20 or decimal_places(value) > MAX_SCALE:
        raise InvalidInput(
            f"{field} must be a non-negative decimal with at most {MAX_SCALE} decimals", field=field
        )


def check_size(fee_type: FeeType, size: Decimal, field: str) -> None:
    _amount(size, field)
    if fee_type is FeeType.PERCENT and size >= 100:
        raise InvalidInput(f"{field} is a percentage below 100", field=field)


def check_profile_id(profile_id: str) -> None:
    if not PROFILE_ID_RE.match(profile_id):
        raise InvalidInput(
            "a commission profile id is 1-64 letters, digits or . _ -", field="commissionProfileId"
        )


def select_rule(rules: Sequence[CommissionRule], market: Market) -> CommissionRule:
    """The rule a trade on ``market`` pays by: most specific first, then lowest priority number."""
    matching = [r for r in rules if r.applies_to(market)]
    if not matching:
        raise InvariantViolation("the commission profile has no default rule", market=market.id)
    return min(matching, key=lambda r: (-r.specificity, r.priority, r.id))


def _round_up(value: Decimal, scale: int) -> Decimal:
    with localcontext(_EXACT):
        return max(Decimal(0), value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_CEILING))


def commission(rule: CommissionRule, quote_amount: Decimal, *, is_maker: bool, quote_scale: int) -> Decimal:
    """The fee, in the quote asset, of one fill worth ``quote_amount``: rounded up to ``quote_scale``.
    A Fixed fee is charged per fill whatever its size (it may exceed a tiny fill's value)."""
    return spot_fee(
        rule.fee_type, rule.maker_size if is_maker else rule.taker_size, quote_amount, quote_scale
    )


def spot_fee(fee_type: FeeType, size: Decimal, quote_amount: Decimal, quote_scale: int) -> Decimal:
    """``commission`` from the rule's type and the one size that applies (the engine's hot path:
    no rule object to build per fill)."""
    if quote_amount < 0:
        raise InvariantViolation("a fill's quote amount cannot be negative", quote_amount=str(quote_amount))
    if fee_type is FeeType.FIXED:
        return _round_up(size, quote_scale)
    with localcontext(_EXACT):
        raw = quote_amount * size / 100
    return _round_up(raw, quote_scale)


def min_fee_in_asset(min_fee_rat: Decimal | None, rate: Decimal | None, scale: int) -> Decimal | None:
    """``minFeeRAT`` in an asset worth ``rate`` RAT a unit: ``min_fee_rat / rate`` rounded UP to
    ``scale`` (in the house's favour, like every fee). None (no minimum) without a minimum or
    without a rate for the asset."""
    if min_fee_rat is None or rate is None or rate <= 0:
        return None
    with localcontext(_EXACT):
        return _round_up(min_fee_rat / rate, scale)


def max_commission(rule: CommissionRule, quote_amount: Decimal, quote_scale: int) -> Decimal:
    """What a buy order must hold on top of its quote amount: the larger of the maker and taker fee
    (whether it will make or take is not known when it is placed)."""
    return max(
        commission(rule, quote_amount, is_maker=True, quote_scale=quote_scale),
        commission(rule, quote_amount, is_maker=False, quote_scale=quote_scale),
    )


# --- parsing back-office bodies -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleFees:
    """A rule's fees as given in ``feeSettings`` (parsed)."""

    fee_type: FeeType
    maker_size: Decimal
    taker_size: Decimal
    min_fee_rat: Decimal | None = None
    cfd: CfdFee | None = None


def _fee_type(value: object, field: str) -> FeeType:
    if isinstance(value, str):
        try:
            return FeeType(value)
        except ValueError:
            pass
    raise InvalidInput(f"{field} must be one of {', '.join(t.value for t in FeeType)}", field=field)


def _object(value: object, field: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field} must be an object", field=field)
    unknown = set(value) - allowed
    if unknown:
        raise InvalidInput(f"unknown field {field}.{sorted(unknown)[0]}", field=field)
    return value


def parse_fee_settings(value: object) -> RuleFees:
    """``feeSettings``: {spot: {type, size, makerSize?, takerSize?}, cfd?: {assetId, type, size}, minFeeRAT?}.
    ``makerSize``/``takerSize`` are bourse extensions; each defaults to ``size``."""
    settings = _object(value, "feeSettings", {"spot", "cfd", "minFeeRAT"})
    if settings.get("spot") is None:
        raise InvalidInput("feeSettings.spot is required", field="feeSettings.spot")
    spot = _object(settings["spot"], "feeSettings.spot", {"type", "size", "makerSize", "takerSize"})
    fee_type = _fee_type(spot.get("type"), "feeSettings.spot.type")
    size = spot.get("size")
    sizes = {}
    for name in ("makerSize", "takerSize"):
        raw = spot.get(name, size)
        if raw is None:
            raise InvalidInput("feeSettings.spot.size is required", field="feeSettings.spot.size")
        sizes[name] = parse_decimal(
            raw, f"feeSettings.spot.{name}" if name in spot else "feeSettings.spot.size"
        )
        check_size(
            fee_type, sizes[name], f"feeSettings.spot.{name}" if name in spot else "feeSettings.spot.size"
        )
    min_fee = settings.get("minFeeRAT")
    min_fee_rat = None if min_fee is None else parse_decimal(min_fee, "feeSettings.minFeeRAT")
    if min_fee_rat is not None:
        _amount(min_fee_rat, "feeSettings.minFeeRAT")
    cfd = None
    if settings.get("cfd") is not None:
        raw_cfd = _object(settings["cfd"], "feeSettings.cfd", {"assetId", "type", "size"})
        asset = raw_cfd.get("assetId")
        if asset is not None and (not isinstance(asset, str) or not asset):
            raise InvalidInput("feeSettings.cfd.assetId must be an asset id", field="feeSettings.cfd.assetId")
        cfd_type = _fee_type(raw_cfd.get("type"), "feeSettings.cfd.type")
        cfd_size = parse_decimal(raw_cfd.get("size"), "feeSettings.cfd.size")
        check_size(cfd_type, cfd_size, "feeSettings.cfd.size")
        cfd = CfdFee(AssetId(asset) if asset else None, cfd_type, cfd_size)
    return RuleFees(fee_type, sizes["makerSize"], sizes["takerSize"], min_fee_rat, cfd)


def fee_settings_view(rule: CommissionRule) -> dict[str, Any]:
    """The spec's ``feeSettings``; ``size`` is the taker size, ``makerSize``/``takerSize`` both sizes."""
    cfd = rule.cfd
    return {
        "spot": {
            "type": rule.fee_type.value,
            "size": format_decimal(rule.taker_size),
            "makerSize": format_decimal(rule.maker_size),
            "takerSize": format_decimal(rule.taker_size),
        },
        "cfd": None
        if cfd is None
        else {"assetId": cfd.asset_id, "type": cfd.type.value, "size": format_decimal(cfd.size)},
        "minFeeRAT": None if rule.min_fee_rat is None else format_decimal(rule.min_fee_rat),
    }
