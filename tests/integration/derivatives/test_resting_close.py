"""A stop loss with a limit price closes through a resting reduce-only limit order; when the
position is closed another way first, that order is Cancelled with the true reason."""

from __future__ import annotations

from bourse.domain.orders import OrderStatus
from bourse.domain.positions import CloseReason
from bourse.service.derivatives import PositionTriggers
from bourse.service.derivatives_records import DerivativeReject
from tests.integration.derivatives.support import D, hedging_trader, make_cfd, place, set_price
from tests.integration.derivatives.test_job_entry_points import mark_to


async def test_a_resting_stop_loss_limit_close_of_a_closed_position_is_cancelled_position_closed(container):
    market = await make_cfd(container)
    alice = await hedging_trader(container, "alice", usdt="1000")
    opened = await place(container, alice, market, "Buy", "2", leverage=10)
    position_id = opened.order.position_id
    assert position_id is not None
    await container.derivatives.set_triggers(
        alice.principal,
        alice.account_id,
        position_id,
        PositionTriggers(stop_loss=D(97), stop_limit_price=D(98)),
    )
    await mark_to(container, market, "96", until=lambda m: m <= 97)
    (resting,) = await container.derivatives.apply_triggers(position_id)
    # The bid (96) is below the limit (98): the close rests.
    assert (resting.order.status, resting.order.reason) == (OrderStatus.PLACED, CloseReason.STOP_LOSS)

    await set_price(container, market, "96", "96")
    await container.derivatives.close(alice.principal, alice.account_id, position_id, None)
    assert await container.derivatives.run_dealer_orders() == 1

    order = await container.derivatives.get_order(
        alice.principal, alice.account_id, str(resting.order.order_id)
    )
    assert order is not None
    assert (order.order.status, order.order.reject_reason) == (
        OrderStatus.CANCELLED,
        DerivativeReject.POSITION_CLOSED.value,
    )
    assert await container.derivatives.run_dealer_orders() == 0  # final now
