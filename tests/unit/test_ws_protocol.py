"""The /ws message rules, without a socket."""

import json

import pytest

from bourse.api.native.ws_protocol import (
    MAX_MESSAGE_CHARS,
    Channel,
    Op,
    Request,
    Topic,
    ack,
    error_message,
    parse_request,
)
from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.marketdata import Interval


def test_subscribe_names_a_public_topic():
    r = parse_request(
        '{"op": "subscribe", "channel": "candles", "market": " BTCUSDT ", "interval": "1M", "id": 3}'
    )
    assert r == Request(Op.SUBSCRIBE, Topic(Channel.CANDLES, "BTCUSDT", Interval.MN1), id=3)
    # An interval on another channel is not part of its topic: one trades stream per market.
    r = parse_request('{"op": "subscribe", "channel": "trades", "market": "BTCUSDT", "interval": "1m"}')
    assert r.topic == Topic(Channel.TRADES, "BTCUSDT")


def test_private_topics_cover_all_the_callers_accounts():
    r = parse_request('{"op": "subscribe", "channel": "orders", "market": "ignored"}')
    assert r.topic == Topic(Channel.ORDERS) and r.topic.channel.private
    assert not Channel.ORDERBOOK.private


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("[]", None),
        ("{", None),
        ('{"op": "subscribe", "channel": "trades", "market": ""}', "market"),
        ('{"op": "subscribe", "channel": "trades", "market": 5}', "market"),
        ('{"op": "subscribe", "channel": null, "market": "X"}', "channel"),
        ('{"op": "auth", "token": "  "}', "token"),
        ('{"op": "ping", "id": true}', "id"),
        ('{"op": "ping", "id": [1]}', "id"),
        (json.dumps({"op": "ping", "pad": "x" * MAX_MESSAGE_CHARS}), None),
    ],
)
def test_malformed_messages_are_refused_with_the_field(raw, field):
    with pytest.raises(InvalidInput) as err:
        parse_request(raw)
    assert err.value.details.get("field") == field


def test_answers_echo_the_request():
    r = parse_request('{"op": "subscribe", "channel": "candles", "market": "X", "interval": "5m", "id": "a"}')
    assert ack("subscribed", r) == {
        "type": "subscribed",
        "channel": "candles",
        "market": "X",
        "interval": "5m",
        "id": "a",
    }
    assert error_message(NotFound("no", field="marketSymbol"), r) == {
        "type": "error",
        "code": "not_found",
        "message": "no",
        "field": "marketSymbol",
        "op": "subscribe",
        "channel": "candles",
        "market": "X",
        "interval": "5m",
        "id": "a",
    }
    assert error_message(InvalidInput("bad")) == {"type": "error", "code": "invalid_input", "message": "bad"}
