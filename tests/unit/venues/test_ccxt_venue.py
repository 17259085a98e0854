"""The ccxt venue without the network: a real ccxt binance object whose HTTP layer
(``Exchange.fetch``) answers from canned exchange responses, so the request building, signing,
response parsing and error mapping above it are ccxt's own code."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt.async_support as ccxt_async
import pytest

from bourse.adapters.venues.ccxt_venue import CcxtVenue, parse_order
from bourse.domain.orders import Side
from bourse.domain.venues import (
    VenueCredentials,
    VenueOrderRef,
    VenueOrderRequest,
    VenueOrderState,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from tests.unit.pricing.test_pricefeeds import BINANCE_SPOT

D = Decimal
KEYS = VenueCredentials("api-key-0123456789", "api-secret-0123456789")


def _order(status: str, executed: str, *, order_id: int = 123, client: str = "H7") -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "orderId": order_id,
        "clientOrderId": client,
        "transactTime": 1757419200000,
        "time": 1757419200000,
        "updateTime": 1757419200000,
        "price": "0",
        "origQty": "0.5",
        "executedQty": executed,
        "cummulativeQuoteQty": str(D(executed) * D("65000.1")),
        "status": status,
        "timeInForce": "GTC",
        "type": "MARKET",
        "side": "BUY",
        "fills": [{"price": "65000.10", "qty": executed, "commission": "0.0005", "commissionAsset": "BTC"}]
        if D(executed)
        else [],
    }


class Binance:
    """The canned exchange: market data, and private order endpoints answering from ``orders``."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.client = venue.client
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.order_answer: dict[str, Any] | None = _order("FILLED", "0.5")
        self.error: tuple[int, dict[str, Any]] | None = None
        self.client.fetch = self.fetch

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        if url.endswith("/api/v3/exchangeInfo"):
            return BINANCE_SPOT
        if "exchangeInfo" in url:
            return {"symbols": []}
        if "/sapi/" in url:  # currencies and margin pairs, fetched with the markets when keys are set
            return []
        parsed = urlparse(url)
        if parsed.path == "/api/v3/order":
            query = parse_qs(parsed.query or (body or ""))
            self.requests.append((method, parsed.path, query, headers))
            if self.error is not None:
                status, payload = self.error
                text = json.dumps(payload)
                # ccxt's own error mapping of the exchange's answer
                self.client.handle_errors(status, "error", url, method, {}, text, payload, headers, body)
                raise ccxt_async.ExchangeError(text)
            return self.order_answer
        raise ccxt_async.ExchangeNotAvailable(f"not served in this test: {url}")


async def test_place_sends_a_signed_market_order_with_our_client_id_and_parses_the_fill():
    venue = CcxtVenue("binance", KEYS, timeout_seconds=3)
    binance = Binance(venue)
    assert venue.client.timeout == 3000 and venue.client.apiKey == KEYS.api_key

    report = await venue.place(VenueOrderRequest("H7", "BTC/USDT", Side.BUY, D("0.5")))

    assert (report.lp_order_id, report.client_order_id, report.state) == ("123", "H7", VenueOrderState.FILLED)
    assert (report.amount, report.filled, report.average_price) == (D("0.5"), D("0.5"), D("65000.1"))
    assert (report.commission, report.commission_asset) == (D("0.0005"), "BTC")
    ((method, path, query, headers),) = binance.requests
    assert (method, path) == ("POST", "/api/v3/order")
    assert query["newClientOrderId"] == ["H7"] and query["type"] == ["MARKET"] and query["side"] == ["BUY"]
    assert query["quantity"] == ["0.5"] and "signature" in query
    assert headers["X-MBX-APIKEY"] == KEYS.api_key
    await venue.aclose()


async def test_get_by_venue_id_or_by_client_id_and_cancel():
    venue = CcxtVenue("binance", KEYS)
    binance = Binance(venue)
    binance.order_answer = _order("PARTIALLY_FILLED", "0.2")
    part = await venue.get(VenueOrderRef("BTC/USDT", "H7", "123"))
    assert (part.state, part.filled) == (VenueOrderState.PARTIALLY_FILLED, D("0.2"))
    await venue.get(VenueOrderRef("BTC/USDT", "H7"))  # the answer was lost: look it up by our id
    binance.order_answer = _order("CANCELED", "0.2")
    cancelled = await venue.cancel(VenueOrderRef("BTC/USDT", "H7", "123"))
    assert (cancelled.state, cancelled.filled) == (VenueOrderState.CANCELLED, D("0.2"))
    (get1, get2, cancel) = binance.requests
    assert get1[0] == "GET" and get1[2]["orderId"] == ["123"]
    assert get2[0] == "GET" and get2[2]["origClientOrderId"] == ["H7"] and "orderId" not in get2[2]
    assert cancel[0] == "DELETE" and cancel[2]["orderId"] == ["123"]
    await venue.aclose()


@pytest.mark.parametrize(
    ("status", "payload", "kind"),
    [
        (
            400,
            {"code": -2010, "msg": "Account has insufficient balance for requested action."},
            VenueRejected,
        ),
        (400, {"code": -2013, "msg": "Order does not exist."}, VenueRejected),
        (400, {"code": -1121, "msg": "Invalid symbol."}, VenueRejected),
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, VenueUnavailable),
        (429, {"code": -1003, "msg": "Too many requests."}, VenueUnavailable),
    ],
)
async def test_exchange_errors_become_venue_error_kinds(status, payload, kind):
    venue = CcxtVenue("binance", KEYS)
    binance = Binance(venue)
    binance.error = (status, payload)
    with pytest.raises(kind, match="binance create_order BTC/USDT H7") as e:
        await venue.place(VenueOrderRequest("H7", "BTC/USDT", Side.BUY, D("0.5")))
    assert isinstance(e.value.__cause__, ccxt_async.BaseError)  # translated with ``from``
    await venue.aclose()


async def test_a_timeout_is_a_venue_timeout():
    venue = CcxtVenue("binance", KEYS)

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        raise ccxt_async.RequestTimeout("binance POST https://api.binance.com/api/v3/order timed out")

    venue.client.fetch = fetch
    with pytest.raises(VenueTimeout, match="RequestTimeout"):
        await venue.get(VenueOrderRef("BTC/USDT", "H7", "123"))
    await venue.aclose()


def test_unified_order_shapes():
    base = {"id": "9", "clientOrderId": "H1", "amount": 2.0, "filled": 0.0, "average": None, "fee": None}
    assert parse_order({**base, "status": "open"}).state is VenueOrderState.OPEN
    assert parse_order({**base, "status": "open", "filled": 0.5}).state is VenueOrderState.PARTIALLY_FILLED
    done = parse_order(
        {
            **base,
            "status": "closed",
            "filled": 2.0,
            "average": 0.1,
            "fees": [{"cost": 0.01, "currency": "USDT"}, {"cost": 0.02, "currency": "USDT"}],
        }
    )
    assert (done.state, done.average_price, done.commission, done.commission_asset) == (
        VenueOrderState.FILLED,
        D("0.1"),
        D("0.03"),
        "USDT",
    )
    # closed with a remainder: the exchange ended the rest
    assert parse_order({**base, "status": "closed", "filled": 1.5}).state is VenueOrderState.CANCELLED
    assert parse_order({**base, "status": "expired"}).state is VenueOrderState.CANCELLED
    assert parse_order({**base, "status": "rejected"}).state is VenueOrderState.REJECTED
    assert parse_order({"id": "9"}, fallback=VenueOrderState.CANCELLED).state is VenueOrderState.CANCELLED
    with pytest.raises(VenueUnavailable, match="not an order"):
        parse_order({"status": "open"})


async def test_a_ccxt_call_leaves_the_callers_decimal_context_as_it_was():
    """ccxt's decimal_to_precision (behind create_order's amount_to_precision) sets the current
    decimal context to ROUND_HALF_UP and traps Underflow, in place: without its own context per
    call, one hedge would change how every later quantize in the process rounds."""
    context = decimal.getcontext()
    before = (context.rounding, context.prec, {k: v for k, v in context.traps.items()})
    venue = CcxtVenue("binance", KEYS)
    binance = Binance(venue)

    await venue.place(VenueOrderRequest("H7", "BTC/USDT", Side.BUY, D("0.5")))
    await venue.get(VenueOrderRef("BTC/USDT", "H7", "123"))
    await venue.cancel(VenueOrderRef("BTC/USDT", "H7", "123"))

    assert len(binance.requests) == 3
    assert decimal.getcontext() is context
    assert (context.rounding, context.prec, dict(context.traps.items())) == before
    assert D("0.0072225").quantize(D("0.000001")) == D("0.007222")  # still half-even
    with decimal.localcontext() as probe:  # and ccxt really does change the context it runs in
        ccxt_async.decimal_to_precision("1.5", precision=0)
        assert probe.rounding == decimal.ROUND_HALF_UP
    await venue.aclose()
