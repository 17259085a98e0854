"""The /ws message protocol: what a client may send, and the errors and close codes it gets.

Pure: no sockets here, so every rule can be tested by itself. docs/api/websocket.md is
the reference for clients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bourse.domain.errors import BourseError, InvalidInput
from bourse.domain.marketdata import Interval, parse_interval

MAX_MESSAGE_CHARS = 4096

# Close codes (4000-4999 are the application's own, RFC 6455 section 7.4.2).
CLOSE_SEND_BUFFER_FULL = 4000  # the client does not read its messages fast enough
CLOSE_FELL_BEHIND = 4001  # the connection's event feed was dropped by the bus
CLOSE_TOO_MANY_ERRORS = 1008  # policy violation: a client that keeps sending garbage


class Op(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    AUTH = "auth"
    PING = "ping"


class Channel(StrEnum):
    ORDERBOOK = "orderbook"
    TRADES = "trades"
    TICKER = "ticker"
    CANDLES = "candles"
    ORDERS = "orders"
    BALANCES = "balances"
    NOTIFICATIONS = "notifications"
    POSITIONS = "positions"

    @property
    def private(self) -> bool:
        return self in (Channel.ORDERS, Channel.BALANCES, Channel.NOTIFICATIONS, Channel.POSITIONS)


@dataclass(frozen=True, slots=True)
class Topic:
    """One stream a connection can hold: a public channel of one market (and interval), or a private
    channel covering every account of the authenticated user."""

    channel: Channel
    market: str | None = None
    interval: Interval | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel.value}
        if self.market is not None:
            out["market"] = self.market
        if self.interval is not None:
            out["interval"] = self.interval.value
        return out


@dataclass(frozen=True, slots=True)
class Request:
    op: Op
    topic: Topic | None = None
    token: str | None = None
    id: str | int | None = None  # echoed back, so a client can match answers to requests


def parse_request(raw: str) -> Request:
    """One client message; InvalidInput (with ``field``) for anything malformed."""
    if len(raw) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"messages are at most {MAX_MESSAGE_CHARS} characters")
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("a message must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("a message must be a JSON object")
    request_id = body.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int))):
        raise InvalidInput("id must be a string or an integer", field="id")
    try:
        op = Op(str(body.get("op")))
    except ValueError:
        raise InvalidInput(f"op must be one of {', '.join(o.value for o in Op)}", field="op") from None
    if op is Op.AUTH:
        token = body.get("token")
        if not isinstance(token, str) or not token.strip():
            raise InvalidInput("token must be a non-empty string", field="token")
        return Request(op, token=token.strip(), id=request_id)
    if op is Op.PING:
        return Request(op, id=request_id)
    return Request(op, topic=_topic(body), id=request_id)


def _topic(body: dict[str, Any]) -> Topic:
    try:
        channel = Channel(str(body.get("channel")))
    except ValueError:
        raise InvalidInput(
            f"channel must be one of {', '.join(c.value for c in Channel)}", field="channel"
        ) from None
    if channel.private:
        # Private channels cover every account of the caller: nothing to name.
        return Topic(channel)
    market = body.get("market")
    if not isinstance(market, str) or not market.strip():
        raise InvalidInput("market must be a market id, e.g. BTCUSDT", field="market")
    interval = None
    if channel is Channel.CANDLES:
        raw_interval = body.get("interval")
        if not isinstance(raw_interval, str):
            raise InvalidInput("candles need an interval", field="interval")
        interval = parse_interval(raw_interval)
    return Topic(channel, market.strip(), interval)


def error_message(error: BourseError, request: Request | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": error.code, "message": error.message}
    field = error.details.get("field")
    if field is not None:
        out["field"] = field
    if request is not None:
        out["op"] = request.op.value
        if request.topic is not None:
            out.update(request.topic.describe())
        if request.id is not None:
            out["id"] = request.id
    return out


def ack(kind: str, request: Request, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if request.topic is not None:
        out.update(request.topic.describe())
    if request.id is not None:
        out["id"] = request.id
    out.update(extra)
    return out
