"""In-process publish/subscribe with bounded queues.

``publish`` never waits: a subscriber whose queue is full is dropped (its next
``get`` raises ``SubscriptionDropped`` with the reason), so a slow WebSocket client
can never hold up a matching engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from bourse.service.ports import SubscriptionDropped


def _matches(pattern: str, topic: str) -> bool:
    # "trades.*" matches "trades.BTCUSDT"; "*" matches everything; otherwise exact.
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


class InProcSubscription:
    def __init__(self, bus: InProcEventBus, pattern: str, maxsize: int) -> None:
        self._bus = bus
        self.pattern = pattern
        self._queue: asyncio.Queue[tuple[str, Mapping[str, Any]]] = asyncio.Queue(maxsize)
        self.dropped_reason: str | None = None

    def offer(self, topic: str, event: Mapping[str, Any]) -> None:
        if self.dropped_reason is not None:
            return
        try:
            self._queue.put_nowait((topic, event))
        except asyncio.QueueFull:
            self.dropped_reason = f"fell behind by more than {self._queue.maxsize} events"
            self._bus.unsubscribe(self)
            # Wake a waiting reader so it sees the drop at once.
            self._queue.get_nowait()
            self._queue.put_nowait(("", {}))

    async def get(self) -> tuple[str, Mapping[str, Any]]:
        if self.dropped_reason is not None and self._queue.empty():
            raise SubscriptionDropped(self.dropped_reason)
        item = await self._queue.get()
        if self.dropped_reason is not None:
            raise SubscriptionDropped(self.dropped_reason)
        return item

    def close(self) -> None:
        self._bus.unsubscribe(self)


class InProcEventBus:
    def __init__(self) -> None:
        self._subscriptions: list[InProcSubscription] = []

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        for sub in tuple(self._subscriptions):
            if _matches(sub.pattern, topic):
                sub.offer(topic, event)

    def has_subscribers(self, topic: str) -> bool:
        return any(_matches(sub.pattern, topic) for sub in self._subscriptions)

    def subscribe(self, pattern: str, maxsize: int = 1000) -> InProcSubscription:
        sub = InProcSubscription(self, pattern, maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: InProcSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
