"""WebSocket /ws: public market streams and the caller's private order, balance, position and notification
streams.

One session per connection. Every stream reads its own bus subscription and puts
messages on the connection's bounded send queue; one task writes that queue to
the socket. Nothing here ever waits on a slow client: a full send queue or a
bus subscription dropped for falling behind closes the connection with a reason,
and the engine publishing the events never notices. Protocol: docs/api/websocket.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket

from bourse.api.brokerage.derivatives import order_v4_json, position_json
from bourse.api.native.ws_protocol import (
    CLOSE_FELL_BEHIND,
    CLOSE_SEND_BUFFER_FULL,
    CLOSE_TOO_MANY_ERRORS,
    Channel,
    Op,
    Request,
    Topic,
    ack,
    error_message,
    parse_request,
)
from bourse.bootstrap import Container
from bourse.domain.errors import BourseError, Conflict, NotAuthenticated, NotFound, TooManyRequests
from bourse.domain.identity import Operation, Principal
from bourse.domain.marketdata import BookSnapshot, Level, book_delta
from bourse.domain.transfers import iso_millis
from bourse.domain.values import AccountId, format_decimal
from bourse.service.marketdata import (
    DEPTH_MAX,
    book_json,
    candle_json,
    parse_book_event,
    parse_trade_event,
    ticker_json,
    trade_json,
)
from bourse.service.ports import Subscription, SubscriptionDropped

log = structlog.get_logger("bourse.ws")
router = APIRouter(tags=["websocket"])

SEND_BUFFER = 1000  # messages waiting for one client; one more and it is closed
BUS_BUFFER = 1000  # events waiting per stream before the bus drops it
MAX_STREAMS = 50
MAX_ERRORS = 20
CLOSE_TIMEOUT = 1.0

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class _Stream:
    topic: Topic
    seq: int = 0
    book: BookSnapshot | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for sub in self.subscriptions:
            sub.close()


def _levels(levels: list[Level] | tuple[Level, ...]) -> list[list[str]]:
    return [[format_decimal(p), format_decimal(a)] for p, a in levels]


class WsSession:
    def __init__(self, websocket: WebSocket, container: Container) -> None:
        self._ws = websocket
        self._c = container
        self._out: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SEND_BUFFER)
        self._streams: dict[Topic, _Stream] = {}
        self._principal: Principal | None = None
        self._closing: tuple[int, str] | None = None
        self._done = asyncio.Event()
        self._errors = 0

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._send_forever()),
            asyncio.create_task(self._receive_forever()),
            asyncio.create_task(self._done.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for stream in self._streams.values():
                stream.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(
                *tasks, *(t for s in self._streams.values() for t in s.tasks), return_exceptions=True
            )
            self._streams.clear()
            if self._closing is not None:
                code, reason = self._closing
                log.info("websocket closed", code=code, reason=reason)
                # A client that reads nothing may never take the close frame either: bounded wait.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._ws.close(code, reason), CLOSE_TIMEOUT)

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = (code, reason)
            self._done.set()

    # --- the socket ------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        while True:
            message = await self._out.get()
            await self._ws.send_text(json.dumps(message, separators=(",", ":")))

    async def _receive_forever(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", "replace")
            await self._handle(raw)

    def _put(self, message: dict[str, Any]) -> None:
        try:
            self._out.put_nowait(message)
        except asyncio.QueueFull:
            self.close(CLOSE_SEND_BUFFER_FULL, f"send buffer full: more than {SEND_BUFFER} messages unread")

    def _emit(self, stream: _Stream, message: dict[str, Any]) -> None:
        stream.seq += 1
        self._put({**message, **stream.topic.describe(), "seq": stream.seq})

    # --- requests --------------------------------------------------------------------------

    async def _handle(self, raw: str) -> None:
        request: Request | None = None
        try:
            request = parse_request(raw)
            if request.op is Op.PING:
                self._put(ack("pong", request))
            elif request.op is Op.AUTH:
                await self._auth(request)
            elif request.op is Op.SUBSCRIBE:
                await self._subscribe(request)
            else:
                self._unsubscribe(request)
        except BourseError as e:
            self._errors += 1
            self._put(error_message(e, request))
            if self._errors > MAX_ERRORS:
                self.close(CLOSE_TOO_MANY_ERRORS, f"more than {MAX_ERRORS} refused messages")

    async def _auth(self, request: Request) -> None:
        if self._principal is not None:
            raise Conflict("already authenticated; open another connection for another user")
        assert request.token is not None
        principal = await self._c.identity.authenticate(request.token)
        principal.require(Operation.TRADING_UI)
        self._principal = principal
        self._put(ack("authenticated", request, userId=principal.uid, username=principal.username))

    def _unsubscribe(self, request: Request) -> None:
        assert request.topic is not None
        stream = self._streams.pop(request.topic, None)
        if stream is None:
            raise NotFound("not subscribed")
        stream.stop()
        self._put(ack("unsubscribed", request))

    async def _subscribe(self, request: Request) -> None:
        topic = request.topic
        assert topic is not None
        if topic in self._streams:
            raise Conflict("already subscribed; unsubscribe first for a fresh snapshot")
        if topic.channel.private and self._principal is None:
            raise NotAuthenticated('send {"op": "auth", "token": ...} before subscribing to private channels')
        if len(self._streams) >= MAX_STREAMS:
            raise TooManyRequests(f"at most {MAX_STREAMS} subscriptions per connection", retry_after=0)
        stream = _Stream(topic)
        starts = {
            Channel.ORDERBOOK: self._start_orderbook,
            Channel.TRADES: self._start_trades,
            Channel.TICKER: self._start_ticker,
            Channel.CANDLES: self._start_candles,
            Channel.ORDERS: self._start_orders,
            Channel.BALANCES: self._start_balances,
            Channel.NOTIFICATIONS: self._start_notifications,
            Channel.POSITIONS: self._start_positions,
        }
        self._streams[topic] = stream
        try:
            # Each start subscribes to the bus before it reads its snapshot, so no event falls in between.
            await starts[topic.channel](stream, request)
        except BaseException:
            self._streams.pop(topic, None)
            stream.stop()
            raise

    def _listen(self, stream: _Stream, pattern: str, handle: Handler) -> None:
        """Subscribe now (events queue up from here on); they are handled once ``_go`` runs."""
        sub = self._c.bus.subscribe(pattern, maxsize=BUS_BUFFER)
        stream.subscriptions.append(sub)
        stream.handlers.append(handle)

    def _go(self, stream: _Stream) -> None:
        for sub, handle in zip(stream.subscriptions, stream.handlers, strict=True):
            stream.tasks.append(asyncio.create_task(self._pump(sub, handle)))

    async def _pump(self, sub: Subscription, handle: Handler) -> None:
        try:
            while True:
                _, event = await sub.get()
                try:
                    await handle(event)
                except (BourseError, KeyError, TypeError, ValueError) as e:
                    log.warning("websocket event skipped", error=str(e))
        except SubscriptionDropped as e:
            self.close(CLOSE_FELL_BEHIND, f"fell behind the event feed: {e}")

    # --- public streams --------------------------------------------------------------------

    async def _start_orderbook(self, stream: _Stream, request: Request) -> None:
        market = _market(stream)

        async def update(event: Mapping[str, Any]) -> None:
            new = parse_book_event(event)
            old = stream.book
            assert old is not None
            if not new.supersedes(old):
                return  # already in what the client has
            bids = book_delta(old.bids, new.bids, descending=True)
            asks = book_delta(old.asks, new.asks, descending=False)
            stream.book = new
            if bids or asks:
                self._emit(
                    stream,
                    {
                        "type": "update",
                        "instrument": market,
                        "bookSeq": new.seq,
                        "bids": _levels(bids),
                        "asks": _levels(asks),
                        "timestamp": iso_millis(new.at),
                    },
                )

        self._listen(stream, f"book.{market}", update)
        stream.book = await self._c.marketdata.depth(market, DEPTH_MAX)
        self._put(ack("subscribed", request))
        snapshot = book_json(stream.book)
        snapshot["bookSeq"] = snapshot.pop("seq")
        self._emit(stream, {"type": "snapshot", **snapshot})
        self._go(stream)

    async def _start_trades(self, stream: _Stream, request: Request) -> None:
        market = _market(stream)

        async def trade(event: Mapping[str, Any]) -> None:
            self._emit(stream, {"type": "trade", **trade_json(parse_trade_event(event))})

        self._listen(stream, f"trades.{market}", trade)
        await self._c.marketdata.require_market(market)
        self._put(ack("subscribed", request))
        self._go(stream)

    async def _start_ticker(self, stream: _Stream, request: Request) -> None:
        market = _market(stream)

        async def ticker(event: Mapping[str, Any]) -> None:
            self._emit(stream, {"type": "ticker", **event})

        self._listen(stream, f"ticker.{market}", ticker)
        current = ticker_json(await self._c.marketdata.ticker(market))
        self._put(ack("subscribed", request))
        self._emit(stream, {"type": "ticker", **current})
        self._go(stream)

    async def _start_candles(self, stream: _Stream, request: Request) -> None:
        market, interval = _market(stream), stream.topic.interval
        assert interval is not None

        async def candle(event: Mapping[str, Any]) -> None:
            if event.get("interval") == interval.value:
                self._emit(stream, {"type": "candle", **event})

        self._listen(stream, f"candles.{market}", candle)
        latest = await self._c.marketdata.latest_candle(market, interval)
        self._put(ack("subscribed", request))
        if latest is not None:
            self._emit(stream, {"type": "candle", **candle_json(latest)})
        self._go(stream)

    # --- private streams -------------------------------------------------------------------

    async def _own_accounts(self) -> list[AccountId]:
        assert self._principal is not None
        return [v.account.account_id for v in await self._c.accounts.my_accounts(self._principal)]

    async def _start_orders(self, stream: _Stream, request: Request) -> None:
        """Spot orders as the engine publishes them (v3 JSON); CFD/perpetual orders read when
        their event comes (v4 JSON, as ``GET /frontoffice/api/v4/orders/{id}``)."""
        accounts = await self._own_accounts()
        for account_id in accounts:

            async def order(event: Mapping[str, Any], account_id: AccountId = account_id) -> None:
                self._emit(stream, {"type": "order", "accountId": account_id, "order": dict(event)})

            async def derivative(event: Mapping[str, Any], account_id: AccountId = account_id) -> None:
                assert self._principal is not None
                for order_id in event["orderIds"]:
                    view = await self._c.derivatives.get_order(self._principal, account_id, str(order_id))
                    if view is not None:
                        self._emit(
                            stream, {"type": "order", "accountId": account_id, "order": order_v4_json(view)}
                        )

            self._listen(stream, f"orders.{account_id}", order)
            self._listen(stream, f"derivative-orders.{account_id}", derivative)
        self._put(ack("subscribed", request, accounts=accounts))
        self._go(stream)

    async def _start_balances(self, stream: _Stream, request: Request) -> None:
        accounts = await self._own_accounts()
        for account_id in accounts:

            async def changed(event: Mapping[str, Any], account_id: AccountId = account_id) -> None:
                await self._emit_balances(stream, account_id)

            self._listen(stream, f"balances.{account_id}", changed)
        self._put(ack("subscribed", request, accounts=accounts))
        for account_id in accounts:
            await self._emit_balances(stream, account_id)
        self._go(stream)

    async def _start_positions(self, stream: _Stream, request: Request) -> None:
        """CFD/perpetual positions: first each account's open ones, then a position each time it
        changes (opened, changed, closed, triggers set or moved), read when the event comes."""
        assert self._principal is not None
        principal = self._principal
        accounts = await self._own_accounts()
        for account_id in accounts:

            async def changed(event: Mapping[str, Any], account_id: AccountId = account_id) -> None:
                for position_id in event["positionIds"]:
                    view = await self._c.derivatives.position(principal, account_id, str(position_id))
                    self._emit(
                        stream, {"type": "position", "accountId": account_id, "position": position_json(view)}
                    )

            self._listen(stream, f"positions.{account_id}", changed)
        self._put(ack("subscribed", request, accounts=accounts))
        for account_id in accounts:
            views = await self._c.derivatives.positions(principal, account_id)
            self._emit(
                stream,
                {
                    "type": "positions",
                    "accountId": account_id,
                    "positions": [position_json(v) for v in views],
                },
            )
        self._go(stream)

    async def _start_notifications(self, stream: _Stream, request: Request) -> None:
        """The user's trader notifications as they are stored (price alerts firing, ...)."""
        assert self._principal is not None

        async def notification(event: Mapping[str, Any]) -> None:
            self._emit(stream, {"type": "notification", "notification": dict(event)})

        self._listen(stream, f"notifications.{self._principal.uid}", notification)
        self._put(ack("subscribed", request))
        self._go(stream)

    async def _emit_balances(self, stream: _Stream, account_id: AccountId) -> None:
        assert self._principal is not None
        view = await self._c.accounts.user_account(self._principal.uid, account_id)
        self._emit(
            stream,
            {
                "type": "balances",
                "accountId": account_id,
                "balances": [
                    {
                        "assetId": b.asset_id,
                        "available": format_decimal(b.total - b.locked),
                        "locked": format_decimal(b.locked),
                        "total": format_decimal(b.total),
                    }
                    for b in view.balances
                ],
            },
        )


def _market(stream: _Stream) -> str:
    assert stream.topic.market is not None
    return stream.topic.market


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await WsSession(websocket, websocket.app.state.container).run()
