import asyncio

import pytest

from bourse.adapters.bus.inproc import InProcEventBus
from bourse.service.ports import SubscriptionDropped


async def test_subscribers_get_matching_topics_in_order():
    bus = InProcEventBus()
    trades = bus.subscribe("trades.*")
    one = bus.subscribe("trades.BTCUSDT")
    bus.publish("trades.BTCUSDT", {"n": 1})
    bus.publish("trades.ETHUSDT", {"n": 2})
    bus.publish("book.BTCUSDT", {"n": 3})
    assert await trades.get() == ("trades.BTCUSDT", {"n": 1})
    assert await trades.get() == ("trades.ETHUSDT", {"n": 2})
    assert await one.get() == ("trades.BTCUSDT", {"n": 1})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(one.get(), 0.05)


async def test_a_slow_subscriber_is_dropped_and_never_blocks_the_publisher():
    bus = InProcEventBus()
    slow = bus.subscribe("trades.*", maxsize=3)
    fast = bus.subscribe("trades.*", maxsize=100)
    for n in range(10):
        bus.publish("trades.X", {"n": n})  # returns at once even though `slow` is full
    with pytest.raises(SubscriptionDropped, match="fell behind"):
        for _ in range(4):
            await slow.get()
    assert [(await fast.get())[1]["n"] for _ in range(10)] == list(range(10))


async def test_a_waiting_reader_learns_of_the_drop():
    bus = InProcEventBus()
    sub = bus.subscribe("x", maxsize=1)
    bus.publish("x", {"n": 1})
    assert await sub.get() == ("x", {"n": 1})
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    bus.publish("x", {"n": 2})
    bus.publish("x", {"n": 3})  # queue of one already holds n=2: dropped
    with pytest.raises(SubscriptionDropped):
        # the reader may first receive n=2 (it was waiting); the drop shows on the next get
        await reader
        await sub.get()


async def test_closed_subscription_receives_nothing():
    bus = InProcEventBus()
    sub = bus.subscribe("x")
    sub.close()
    bus.publish("x", {"n": 1})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sub.get(), 0.05)


def test_has_subscribers_follows_subscribe_close_and_drop():
    bus = InProcEventBus()
    assert not bus.has_subscribers("orders.A1")
    wildcard = bus.subscribe("orders.*")
    assert bus.has_subscribers("orders.A1") and not bus.has_subscribers("balances.A1")
    wildcard.close()
    assert not bus.has_subscribers("orders.A1")
    bus.subscribe("orders.A1", maxsize=1)
    assert bus.has_subscribers("orders.A1") and not bus.has_subscribers("orders.A2")
    bus.publish("orders.A1", {"n": 1})
    bus.publish("orders.A1", {"n": 2})  # full: dropped
    assert not bus.has_subscribers("orders.A1")
