"""What a derivatives use case tells the bus after its commit: which of an account's derivative
orders, positions and balances changed.

The events carry ids only (as the engine's ``balances.<account>`` events do): a listener reads
the current state through the services when it needs it, so a use case publishes without
building any view. Topics (``ports.EventBus``):

- ``derivative-orders.<accountId>``: ``{"accountId", "orderIds": [..], "ts"}`` (placed, filled,
  cancelled, rejected, expired, activated);
- ``positions.<accountId>``: ``{"accountId", "positionIds": [..], "ts"}`` (opened, changed,
  closed, triggers set or moved);
- ``balances.<accountId>``: ``{"accountId", "assetIds": [..], "ts"}`` (fills, funding, swaps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bourse.domain.orders import OrderStatus
from bourse.domain.values import AccountId, AssetId
from bourse.service.derivatives_records import DerivativeOrder, ExecutionQuery
from bourse.service.ports import EventBus, UnitOfWork

# At most this many executions come from one fill (a netting flip writes two).
_FILL_ROWS = 10


@dataclass(slots=True)
class Changes:
    """What one committed use case changed for one account."""

    account: AccountId
    order_ids: list[int] = field(default_factory=list)
    position_ids: list[str] = field(default_factory=list)
    assets: list[AssetId] = field(default_factory=list)

    @classmethod
    def of_balances(cls, account: AccountId, assets: Iterable[AssetId]) -> Changes:
        return cls(account, assets=list(assets))

    @classmethod
    def of_position(cls, account: AccountId, position_id: str) -> Changes:
        return cls(account, position_ids=[position_id])


async def order_changes(uow: UnitOfWork, order: DerivativeOrder) -> Changes:
    """The order; when it filled, the positions its fill touched (read from its executions in the
    caller's unit of work, before the commit) and the settlement asset's balances."""
    changes = Changes(order.account_id, order_ids=[order.order_id])
    if order.status is OrderStatus.FILLED:
        rows = await uow.derivatives.executions(
            order.account_id, ExecutionQuery(order_ids=(order.order_id,), limit=_FILL_ROWS)
        )
        changes.position_ids = sorted({r.position_id for r in rows}, key=int)
        changes.assets = [order.commission_asset]
    return changes


def publish(bus: EventBus | None, now: datetime, changes: Sequence[Changes]) -> None:
    """Publish ``changes`` (after the commit that made them), merged per account."""
    if bus is None:
        return
    ts = int(now.timestamp() * 1000)
    merged: dict[AccountId, Changes] = {}
    for c in changes:
        m = merged.setdefault(c.account, Changes(c.account))
        m.order_ids += [o for o in c.order_ids if o not in m.order_ids]
        m.position_ids += [p for p in c.position_ids if p not in m.position_ids]
        m.assets += [a for a in c.assets if a not in m.assets]
    for account, m in merged.items():
        if m.order_ids:
            bus.publish(
                f"derivative-orders.{account}",
                {"accountId": account, "orderIds": [str(o) for o in m.order_ids], "ts": ts},
            )
        if m.position_ids:
            bus.publish(
                f"positions.{account}", {"accountId": account, "positionIds": m.position_ids, "ts": ts}
            )
        if m.assets:
            bus.publish(f"balances.{account}", {"accountId": account, "assetIds": sorted(m.assets), "ts": ts})
