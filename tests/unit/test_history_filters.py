"""History server queries (domain.history): filters, entryTypes, sorts, paging, RAT rates; and the
exact JSON numbers the answers are written with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bourse.adapters.db.history_queries import source_fields
from bourse.api.common.exact_json import dumps, loads
from bourse.domain.errors import InvalidInput
from bourse.domain.history import (
    SCHEMAS,
    EntryType,
    MarketPrice,
    QueryKind,
    Sort,
    parse_own_orders,
    parse_query,
    rates_to_root,
    render_row,
)
from bourse.domain.orders import OrderStatus
from bourse.domain.values import AssetId

D = Decimal
K = QueryKind


def one(kind: QueryKind, field: str, entry: str, value: object):
    query = parse_query(kind, {"filters": [{"entryType": entry, "field": field, "value": value}]})
    (f,) = query.filters
    return f


def refused(kind: QueryKind, body: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_query(kind, body)
    return caught.value


def flt(field: str, entry: str, value: object) -> dict[str, object]:
    return {"filters": [{"entryType": entry, "field": field, "value": value}]}


# --- entryTypes ---------------------------------------------------------------------------------------


def test_equals_and_not_equals_keep_the_value_typed():
    assert one(K.TRADES, "marketId", "Equals", "BTCUSDT").value == "BTCUSDT"
    assert one(K.TRADES, "side", "NotEquals", "Buy").entry is EntryType.NOT_EQUALS
    assert one(K.TRADES, "orderId", "Equals", "42").value == 42  # ids compare as numbers
    assert one(K.TRADES, "orderId", "Equals", 42).value == 42


def test_contains_is_for_text_only():
    assert one(K.TRADES, "userEmail", "Contains", "alice").value == "alice"
    for field, value in (
        ("baseAmount", "1"),
        ("orderId", "1"),
        ("createdAt", "2025-01-01T00:00:00Z"),
        ("side", "Buy"),
    ):
        error = refused(K.TRADES, flt(field, "Contains", value))
        assert error.details["field"] == "filters[0].entryType"
    assert refused(K.TRADES, flt("userEmail", "Contains", "")).details["field"] == "filters[0].value"


def test_comparisons_take_numbers_times_and_ids():
    assert one(K.TRADES, "baseAmount", "GreaterThan", D("0.1")).value == D("0.1")
    assert one(K.TRADES, "baseAmount", "GreaterOrEqual", "0.000000000000000001").value == D("1E-18")
    assert one(K.TRADES, "executionId", "LessThan", 7).value == 7
    moment = one(K.TRADES, "createdAt", "LessOrEqual", "2025-09-09T23:03:37.501Z").value
    assert moment == datetime(2025, 9, 9, 23, 3, 37, 501000, tzinfo=UTC)
    # An offset is converted to UTC; finer than a millisecond is cut, as stored.
    moment = one(K.TRADES, "createdAt", "GreaterThan", "2025-09-10T01:03:37.501999+02:00").value
    assert moment == datetime(2025, 9, 9, 23, 3, 37, 501000, tzinfo=UTC)
    for field in ("marketId", "side", "userEmail"):
        assert refused(K.TRADES, flt(field, "GreaterThan", "x")).details["field"] == "filters[0].entryType"


def test_in_takes_a_non_empty_list_of_typed_values():
    assert one(K.ORDERS, "orderStatus", "In", ["Filled", "Cancelled"]).value == ("Filled", "Cancelled")
    assert one(K.ORDERS, "orderId", "In", ["1", 2]).value == (1, 2)
    for value in ([], "Filled", None, ["Filled", "Nope"]):
        refused(K.ORDERS, flt("orderStatus", "In", value))


def test_between_takes_low_and_high_inclusive():
    f = one(K.TRADES, "createdAt", "Between", ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"])
    assert f.value[0] < f.value[1]
    assert one(K.TRADES, "baseAmount", "Between", ["1", "1"]).value == (D(1), D(1))
    for value in (["1"], ["1", "2", "3"], "1", ["2", "1"]):
        refused(K.TRADES, flt("baseAmount", "Between", value))


def test_every_entry_type_is_accepted_somewhere():
    accepted = set()
    for entry in EntryType:
        for field, value in (("marketId", "BTCUSDT"), ("baseAmount", "1")):
            v: object = (
                [value, value] if entry is EntryType.BETWEEN else [value] if entry is EntryType.IN else value
            )
            try:
                one(K.TRADES, field, entry.value, v)
                accepted.add(entry)
            except InvalidInput:
                pass
    assert accepted == set(EntryType)


# --- what is refused ---------------------------------------------------------------------------------


def test_an_unknown_field_is_refused_never_ignored():
    error = refused(K.TRADES, flt("price", "Equals", "1"))
    assert error.details["field"] == "filters[0].field"
    assert "executionPrice" in error.message
    refused(K.TRADES, flt(None, "Equals", "1"))
    # A field of another query is unknown here.
    refused(K.TRANSFERS, flt("orderId", "Equals", "1"))


@pytest.mark.parametrize("entry", ["Unspecified", "equals", "Like", "", None, 3])
def test_a_bad_entry_type_is_refused(entry):
    assert refused(K.TRADES, flt("marketId", entry, "X")).details["field"] == "filters[0].entryType"


def test_values_of_the_wrong_type_are_refused():
    cases = [
        ("baseAmount", "Equals", "abc"),
        ("baseAmount", "Equals", 0.1),
        ("baseAmount", "Equals", True),
        ("baseAmount", "Equals", "NaN"),
        ("orderId", "Equals", "1a"),
        ("orderId", "Equals", -1),
        ("orderId", "Equals", True),
        ("createdAt", "Equals", "yesterday"),
        ("createdAt", "Equals", "2025-01-01T00:00:00"),
        ("marketId", "Equals", 5),
        ("side", "Equals", "buy"),
        ("marketId", "Equals", "x" * 257),
        ("baseAmount", "Equals", None),
    ]
    for field, entry, value in cases:
        assert refused(K.TRADES, flt(field, entry, value)).details["field"].startswith("filters[0]"), value


def test_null_matches_only_fields_that_can_be_null():
    assert one(K.ORDERS, "limitPrice", "Equals", None).value is None
    assert one(K.ORDERS, "limitPrice", "NotEquals", None).value is None
    refused(K.ORDERS, flt("limitPrice", "GreaterThan", None))


def test_a_filter_needs_its_three_keys_and_no_others():
    refused(K.TRADES, {"filters": [{"entryType": "Equals", "field": "marketId"}]})
    refused(K.TRADES, {"filters": [{"entryType": "Equals", "field": "marketId", "value": "X", "op": 1}]})
    refused(K.TRADES, {"filters": {"entryType": "Equals"}})
    refused(K.TRADES, {"filters": ["marketId"]})


def test_unknown_keys_and_paging_where_there_are_no_rows_are_refused():
    assert refused(K.TRADES, {"filter": []}).details["field"] == "filter"
    for key, value in (("limit", 1), ("sort", {"field": "x"}), ("offset", 0)):
        assert refused(K.ACTIVE_ACCOUNTS, {key: value}).details["field"] == key
    refused(K.TRADES, [])


def test_period_filters_select_what_is_aggregated():
    f = one(K.COMMISSIONS_USERS, "createdAt", "GreaterOrEqual", "2025-01-01T00:00:00Z")
    assert f.period
    assert not one(K.COMMISSIONS_USERS, "userId", "Equals", "1").period
    # commissions/assets rows have a createdAt (the asset's): a createdAt filter is still the period.
    assert one(K.COMMISSIONS_ASSETS, "createdAt", "LessThan", "2025-01-01T00:00:00Z").period
    refused(K.BALANCES, flt("createdAt", "LessThan", "2025-01-01T00:00:00Z"))


# --- sort and paging --------------------------------------------------------------------------------


def test_sort_defaults_and_the_key_breaks_ties_in_the_same_direction():
    assert parse_query(K.TRADES, {}).sort == (Sort("createdAt", True), Sort("executionId", True))
    q = parse_query(K.TRADES, {"sort": {"field": "executionPrice", "direction": "Asc"}})
    assert q.sort == (Sort("executionPrice", False), Sort("executionId", False))
    q = parse_query(K.TRADES, {"sort": {"column": "executionPrice", "direction": "Desc"}})
    assert q.sort == (Sort("executionPrice", True), Sort("executionId", True))
    q = parse_query(K.TRADES, {"sort": {"field": "executionId", "direction": "Asc"}})
    assert q.sort == (Sort("executionId", False),)
    # Without a direction (or "Unspecified"): the default's for the default field, else Asc.
    assert (
        parse_query(K.TRADES, {"sort": {"field": "createdAt", "direction": "Unspecified"}}).sort[0].descending
    )
    assert not parse_query(K.TRADES, {"sort": {"field": "baseAmount"}}).sort[0].descending
    assert parse_query(K.TRADES, {"sort": {"direction": "Asc"}}).sort[0] == Sort("createdAt", False)


def test_bad_sorts_are_refused():
    for sort in (
        {"field": "nope"},
        {"field": "baseAmount", "column": "quoteAmount"},
        {"field": "baseAmount", "direction": "Descending"},
        {"field": "baseAmount", "x": 1},
        "baseAmount",
    ):
        assert refused(K.TRADES, {"sort": sort}).details["field"].startswith("sort")


def test_limit_and_offset_bounds():
    q = parse_query(K.TRADES, {"limit": 1000, "offset": 5})
    assert (q.limit, q.offset) == (1000, 5)
    assert parse_query(K.TRADES, None).limit == 100
    for body in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": "10"},
        {"limit": True},
        {"offset": -1},
        {"offset": 1.5},
    ):
        refused(K.TRADES, body)


def test_own_orders_query():
    q = parse_own_orders(
        {
            "createdAtFrom": "2025-01-01T00:00:00Z",
            "orderStatuses": ["Filled"],
            "lastOrderId": "12",
            "limit": 5,
        }
    )
    assert q.statuses == (OrderStatus.FILLED,) and q.last_order_id == 12 and q.limit == 5
    assert parse_own_orders(None).limit == 100
    for body in (
        {"orderStatuses": ["Unspecified"]},
        {"lastOrderId": 12},
        {"lastOrderId": "x"},
        {"createdAtFrom": "2025-01-02T00:00:00Z", "createdAtTo": "2025-01-01T00:00:00Z"},
        {"filters": []},
        {"limit": 0},
    ):
        with pytest.raises(InvalidInput):
            parse_own_orders(body)


# --- schemas and SQL agree --------------------------------------------------------------------------


def test_every_row_field_has_a_column_in_its_sql_source():
    for kind, schema in SCHEMAS.items():
        if not schema.rows:
            continue
        assert set(source_fields(kind)) == set(schema.fields), kind
        assert all(k in schema.fields for k in schema.key), kind


# --- rates into the root asset ------------------------------------------------------------------------


def p(base: str, quote: str, price: str) -> MarketPrice:
    return MarketPrice(AssetId(base), AssetId(quote), D(price))


def test_rates_direct_inverse_and_through_one_intermediate():
    rates = rates_to_root(
        AssetId("USDT"),
        ["USDT", "BTC", "EUR", "ETH", "DOGE", "LONE"],
        [
            p("BTC", "USDT", "110"),
            p("USDT", "EUR", "0.5"),
            p("ETH", "BTC", "0.05"),
            p("DOGE", "ETH", "0.001"),
        ],
    )
    assert rates.rate("USDT") == 1
    assert rates.rate("BTC") == 110
    assert rates.rate("EUR") == 2  # USDT/EUR at 0.5: one EUR is 2 USDT
    assert rates.rate("ETH") == D("5.5")
    assert rates.rate("DOGE") is None  # two intermediate markets away
    assert rates.rate("LONE") is None


def test_a_direct_market_wins_over_a_path_and_unpriced_markets_do_not_count():
    rates = rates_to_root(
        AssetId("USDT"),
        ["ETH", "XRP"],
        [p("ETH", "USDT", "5"), p("ETH", "BTC", "0.05"), p("BTC", "USDT", "110"), p("XRP", "USDT", "0")],
    )
    assert rates.rate("ETH") == 5
    assert rates.rate("XRP") is None


# --- rendering --------------------------------------------------------------------------------------


def test_rows_render_ids_as_text_times_iso_and_amounts_as_decimals():
    fields = SCHEMAS[K.TRANSFERS].fields
    row = {name: None for name in fields} | {
        "userId": 100001,
        "assetAmount": D("10.500000000000000000"),
        "createdAt": datetime(2025, 1, 2, 3, 4, 5, 6000, UTC),
        "assetAmountInRAT": D("0E-18"),
    }
    out = render_row(fields, row)
    assert list(out) == list(fields)
    assert out["userId"] == "100001" and out["createdAt"] == "2025-01-02T03:04:05.006Z"
    assert dumps(out["assetAmount"]) == "10.5" and dumps(out["assetAmountInRAT"]) == "0"


def test_json_numbers_are_exact_both_ways():
    body = loads(
        '{"a": 0.1, "b": 0.2, "c": 1.000000000000000001, "d": 123456789012345678.123456789012345678}'
    )
    assert body["a"] + body["b"] == D("0.3")
    text = dumps(
        {
            "sum": body["a"] + body["b"],
            "c": body["c"],
            "d": body["d"],
            "big": D("1E+20"),
            "tiny": D("1E-18"),
            "neg": D("-0.000"),
            "int": 7,
            "s": 'é"',
            "n": None,
            "t": True,
        }
    )
    assert text == (
        '{"sum":0.3,"c":1.000000000000000001,"d":123456789012345678.123456789012345678,'
        '"big":100000000000000000000,"tiny":0.000000000000000001,"neg":0,"int":7,"s":"é\\"",'
        '"n":null,"t":true}'
    )
    assert json.loads(text, parse_float=Decimal)["c"] == D("1.000000000000000001")
    with pytest.raises(TypeError):
        dumps({"x": 0.1})
    with pytest.raises(ValueError):
        loads('{"x": NaN}')
