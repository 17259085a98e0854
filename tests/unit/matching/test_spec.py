"""Decimal <-> ticks and lots: exact or refused, never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.matching import EngineRules, MarketSpec

D = Decimal


def spec(**kw: object) -> MarketSpec:
    base: dict[str, object] = {"symbol": "BTC-USDT", "tick_size": D("0.05"), "lot_step": D("0.001")}
    base.update(kw)
    return MarketSpec(**base)  # type: ignore[arg-type]


def test_prices_are_whole_ticks_and_back() -> None:
    s = spec()
    assert s.price_to_ticks(D("1.10")) == 22
    assert s.price_to_ticks(D("1.1000")) == 22
    assert s.ticks_to_price(22) == D("1.10")
    assert s.quantity_to_lots(D("0.250")) == 250
    assert s.lots_to_quantity(250) == D("0.250")
    assert (s.price_scale, s.amount_scale) == (2, 3)


@pytest.mark.parametrize("price", ["1.12", "1.101", "0", "-0.05", "NaN", "Infinity"])
def test_off_tick_and_non_positive_prices_are_refused(price: str) -> None:
    with pytest.raises(InvalidInput) as info:
        spec().price_to_ticks(D(price))
    assert info.value.details == {"field": "price", "reason": "InvalidPrice"}


@pytest.mark.parametrize("qty", ["0.0005", "0", "1E+40"])
def test_quantities_finer_than_a_lot_or_out_of_range_are_refused(qty: str) -> None:
    with pytest.raises(InvalidInput) as info:
        spec().quantity_to_lots(D(qty))
    assert info.value.details["reason"] == "InvalidQuantity"


def test_market_limits_are_checked_in_units() -> None:
    s = spec(min_price=D("1"), max_price=D("100"), min_quantity=D("0.01"), max_quantity=D("5"))
    rules = s.engine_rules()
    assert (rules.min_price, rules.max_price, rules.min_quantity, rules.max_quantity) == (20, 2000, 10, 5000)
    with pytest.raises(InvalidInput):
        s.price_to_ticks(D("100.05"))
    with pytest.raises(InvalidInput):
        s.quantity_to_lots(D("0.009"))
    assert s.quantity_to_lots(D("5")) == 5000


def test_limits_must_be_on_the_grid() -> None:
    with pytest.raises(InvalidInput):
        spec(min_price=D("1.01"))
    with pytest.raises(InvalidInput):
        spec(tick_size=D("0"))
    with pytest.raises(InvalidInput):
        spec(price_band=D("1"))


def test_the_price_band_never_widens_by_rounding() -> None:
    rules = spec(price_band=D("0.05")).engine_rules()
    assert rules.band_bounds(100) == (95, 105)
    # 101 * 1.05 = 106.05 -> 106 (not 107); 101 * 0.95 = 95.95 -> 96 (not 95)
    assert rules.band_bounds(101) == (96, 106)
    assert EngineRules(band_num=0, band_den=1).band_bounds(7) == (7, 7)
