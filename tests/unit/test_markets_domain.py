"""Markets in the domain: validation, defaults, calendars, the engine's view."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput
from bourse.domain.markets import MarketStatus, MarketType, new_market

NOW = datetime(2025, 9, 9, 23, 3, 37, 501234, tzinfo=UTC)


def test_defaults_from_the_scales():
    m = new_market({"baseAssetId": "BTC", "quoteAssetId": "USDT", "priceScale": 2, "amountScale": 6}, NOW)
    assert m.id == "BTCUSDT" and m.type is MarketType.SPOT and m.status is MarketStatus.ACTIVE
    assert (m.tick_size, m.lot_step, m.min_amount) == (Decimal("0.01"), Decimal("0.000001"), Decimal("0.000001"))
    assert m.spec().price_to_ticks(Decimal("100.25")) == 10025
    with pytest.raises(InvalidInput):
        new_market({"baseAssetId": "BTC", "quoteAssetId": "USDT", "priceScale": 2}, NOW)
