"""Venues, hedge settings and external orders: the transition table, the timeout rule, parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bourse.domain.errors import InvalidInput, InvariantViolation
from bourse.domain.orders import Side
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.domain.venues import (
    AWAITING_VENUE,
    FINAL,
    TRANSITIONS,
    ExternalOrder,
    ExternalOrderStatus,
    PaperMode,
    VenueConfig,
    VenueKind,
    VenueOrder,
    VenueOrderState,
    can_move,
    hedge_amount,
    mask,
    parse_hedge_settings,
    parse_venue,
    timed_out,
    timeout_at,
)

S = ExternalOrderStatus
D = Decimal
NOW = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)


def _order(status: S = S.NEW, **changes: object) -> ExternalOrder:
    values: dict[str, object] = {
        "external_order_id": "H7",
        "venue_id": "paper",
        "venue_symbol": "BTCCFD",
        "order_id": 7,
        "position_execution_id": 70,
        "market_id": "BTCCFD",
        "account_id": AccountId("A1"),
        "uid": UserId(100001),
        "side": Side.BUY,
        "amount": D("2"),
        "status": status,
        "created_at": NOW,
        "updated_at": NOW,
        "timeout_at": NOW + timedelta(seconds=30),
        "reference_price": D("101"),
    }
    values.update(changes)
    return ExternalOrder(**values)  # type: ignore[arg-type]


def _report(state: VenueOrderState, filled: str = "0", price: str | None = None) -> VenueOrder:
    return VenueOrder(
        "lp-1", "H7", state, D("2"), D(filled), None if price is None else D(price), D("0.1"), AssetId("USDT")
    )


# --- the transition table ---------------------------------------------------------------------------


def test_the_table_names_every_state_and_its_final_ones():
    assert set(TRANSITIONS) == set(S)
    assert {S.FILLED, S.REJECTED, S.CANCELLED, S.TIMED_OUT} == FINAL
    assert {S.SENT, S.ACKNOWLEDGED, S.PARTIALLY_FILLED} == AWAITING_VENUE


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.NEW, S.SENT, True),
        (S.NEW, S.TIMED_OUT, True),
        (S.NEW, S.FILLED, False),  # never filled without being sent
        (S.SENT, S.ACKNOWLEDGED, True),
        (S.SENT, S.FILLED, True),
        (S.SENT, S.REJECTED, True),
        (S.SENT, S.NEW, False),  # a sent order is never sent again
        (S.ACKNOWLEDGED, S.REJECTED, False),  # accepted orders are cancelled, not rejected
        (S.ACKNOWLEDGED, S.PARTIALLY_FILLED, True),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, True),
        (S.PARTIALLY_FILLED, S.ACKNOWLEDGED, False),
        (S.FILLED, S.CANCELLED, False),
        (S.TIMED_OUT, S.FILLED, False),
        (S.CANCELLED, S.TIMED_OUT, False),
    ],
)
def test_moves(current, new, allowed):
    assert can_move(current, new) is allowed
    if allowed:
        assert _order(current).moved(new, NOW).status is new
    else:
        with pytest.raises(InvariantViolation, match=f"{current.value} -> {new.value}"):
            _order(current).moved(new, NOW)


def test_venue_reports_move_the_order_through_the_table():
    sent = _order(S.SENT)
    assert sent.reported(_report(VenueOrderState.OPEN), NOW).status is S.ACKNOWLEDGED
    part = sent.reported(_report(VenueOrderState.OPEN, "0.5", "100"), NOW)
    assert (part.status, part.filled, part.lp_order_id) == (S.PARTIALLY_FILLED, D("0.5"), "lp-1")
    done = part.reported(_report(VenueOrderState.PARTIALLY_FILLED, "2", "100.5"), NOW)
    assert (done.status, done.filled, done.average_price, done.remaining) == (S.FILLED, D(2), D("100.5"), 0)
    # a stale report never takes back a fill
    again = part.reported(_report(VenueOrderState.OPEN, "0.2"), NOW)
    assert again.filled == D("0.5")
    rejected = sent.reported(
        VenueOrder("lp-1", "H7", VenueOrderState.REJECTED, D(2), D(0), None, D(0), None, "no funds"), NOW
    )
    assert (rejected.status, rejected.last_error) == (S.REJECTED, "no funds")
    with pytest.raises(InvariantViolation):
        _order(S.ACKNOWLEDGED).reported(_report(VenueOrderState.REJECTED), NOW)


def test_a_final_order_keeps_its_state_but_records_late_fills():
    timed = _order(S.TIMED_OUT)
    late = timed.reported(_report(VenueOrderState.FILLED, "2", "99"), NOW)
    assert (late.status, late.filled, late.average_price, late.commission) == (
        S.TIMED_OUT,
        D(2),
        D(99),
        D("0.1"),
    )


# --- the timeout rule ---------------------------------------------------------------------------------


def test_timeout_rule():
    at = timeout_at(NOW, 30)
    assert at == NOW + timedelta(seconds=30)
    for status in (S.NEW, S.SENT, S.ACKNOWLEDGED, S.PARTIALLY_FILLED):
        order = _order(status, timeout_at=at)
        assert not timed_out(order, at - timedelta(microseconds=1))
        assert timed_out(order, at)
    for status in FINAL:
        assert not timed_out(_order(status, timeout_at=at), at + timedelta(days=1))


# --- amounts ----------------------------------------------------------------------------------------------


def test_hedge_amount_rounds_down_to_the_amount_scale():
    assert hedge_amount(D("2.5"), D("0.5"), 2) == D("1.25")
    assert hedge_amount(D("0.03"), D("0.5"), 2) == D("0.01")  # 0.015 -> 0.01, never more than the exposure
    assert hedge_amount(D("0.01"), D("0.5"), 2) == 0
    assert hedge_amount(D("3"), D("1"), 0) == D(3)


# --- hedge settings ---------------------------------------------------------------------------------------


def test_hedge_settings_parse_with_defaults():
    s = parse_hedge_settings(
        "BTCCFD", {"venueId": "paper-1", "venueSymbol": "BTCCFD", "hedgeRatio": "0.50"}, NOW
    )
    assert (s.venue_id, s.venue_symbol, s.ratio, s.timeout_seconds, s.enabled) == (
        "paper-1",
        "BTCCFD",
        D("0.5"),
        30,
        True,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"venueSymbol": "X", "hedgeRatio": "1"}, "venueId"),
        ({"venueId": "Paper 1", "venueSymbol": "X", "hedgeRatio": "1"}, "venueId"),
        ({"venueId": "p", "hedgeRatio": "1"}, "venueSymbol"),
        ({"venueId": "p", "venueSymbol": "X"}, "hedgeRatio"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "1.01"}, "hedgeRatio"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "-0.1"}, "hedgeRatio"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": 0.5}, "hedgeRatio"),  # a float
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "0.123456789"}, "hedgeRatio"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "1", "timeoutSeconds": 0}, "timeoutSeconds"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "1", "timeoutSeconds": "30"}, "timeoutSeconds"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "1", "enabled": "yes"}, "enabled"),
        ({"venueId": "p", "venueSymbol": "X", "hedgeRatio": "1", "ratio": "1"}, "ratio"),
    ],
)
def test_hedge_settings_refusals_name_the_field(body, field):
    with pytest.raises(InvalidInput) as e:
        parse_hedge_settings("BTCCFD", body, NOW)
    assert e.value.details["field"] == field


# --- venues -------------------------------------------------------------------------------------------


def test_paper_and_ccxt_venues_parse():
    paper = parse_venue(
        {
            "venueId": "paper-1",
            "kind": "Paper",
            "name": "Paper",
            "paper": {"mode": "Accept", "latencyMs": 20},
        },
        NOW,
    )
    assert paper.credentials is None
    assert (paper.config.kind, paper.config.paper.mode, paper.config.paper.latency_ms) == (  # type: ignore[union-attr]
        VenueKind.PAPER,
        PaperMode.ACCEPT,
        20,
    )
    ccxt = parse_venue(
        {
            "venueId": "binance",
            "kind": "Ccxt",
            "name": "Binance",
            "exchange": "binance",
            "sandbox": True,
            "credentials": {"apiKey": "key-123456789", "secret": "s3cret"},
        },
        NOW,
    )
    assert ccxt.config.exchange == "binance" and ccxt.config.sandbox
    assert ccxt.credentials is not None and ccxt.credentials.masked() == {
        "apiKey": "key-*********",
        "hasSecret": True,
        "hasPassword": False,
    }
    assert mask("short") == "********"


def test_an_update_keeps_stored_credentials_and_refuses_a_kind_change():
    before = VenueConfig("binance", VenueKind.CCXT, "B", NOW, NOW, exchange="binance", credentials_enc="enc")
    later = NOW + timedelta(minutes=1)
    updated = parse_venue(
        {"name": "Binance 2", "exchange": "binance"}, later, venue_id="binance", before=before
    )
    assert (updated.config.credentials_enc, updated.config.created_at, updated.config.updated_at) == (
        "enc",
        NOW,
        later,
    )
    with pytest.raises(InvalidInput) as e:
        parse_venue({"name": "x", "kind": "Paper"}, later, venue_id="binance", before=before)
    assert e.value.details["field"] == "kind"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "Paper", "name": "p"}, "venueId"),
        ({"venueId": "p", "name": "p"}, "kind"),
        ({"venueId": "p", "kind": "Fix", "name": "p"}, "kind"),
        ({"venueId": "p", "kind": "Paper"}, "name"),
        ({"venueId": "p", "kind": "Paper", "name": "p", "paper": {"mode": "Sometimes"}}, "paper.mode"),
        ({"venueId": "p", "kind": "Paper", "name": "p", "paper": {"latencyMs": -1}}, "paper.latencyMs"),
        ({"venueId": "p", "kind": "Paper", "name": "p", "paper": {"feeRate": "0.5"}}, "paper.feeRate"),
        ({"venueId": "p", "kind": "Paper", "name": "p", "paper": {"speed": 1}}, "paper.speed"),
        ({"venueId": "p", "kind": "Paper", "name": "p", "exchange": "binance"}, "exchange"),
        (
            {"venueId": "b", "kind": "Ccxt", "name": "b", "credentials": {"apiKey": "k", "secret": "s"}},
            "exchange",
        ),
        ({"venueId": "b", "kind": "Ccxt", "name": "b", "exchange": "binance"}, "credentials"),
        (
            {
                "venueId": "b",
                "kind": "Ccxt",
                "name": "b",
                "exchange": "binance",
                "credentials": {"apiKey": "k"},
            },
            "credentials.secret",
        ),
        ({"venueId": "b", "kind": "Ccxt", "name": "b", "exchange": "binance", "paper": {}}, "paper"),
        ({"venueId": "p", "kind": "Paper", "name": "p", "colour": "red"}, "colour"),
    ],
)
def test_venue_refusals_name_the_field(body, field):
    with pytest.raises(InvalidInput) as e:
        parse_venue(body, NOW)
    assert e.value.details["field"] == field
