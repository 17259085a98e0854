"""One dealer fill of a derivative order, inside the caller's unit of work.

The caller holds the account's derivative lock (``uow.derivatives.lock_account``). Here: the
account's open positions in the market are locked (``FOR UPDATE``), the ledger accounts the fill
writes are locked in the ledger's id order and the settlement asset's available is read; the
domain's ``apply_fill`` works out the new positions and the one balanced ledger transaction;
then the transaction is posted, the positions, their triggers, the executions, a deficit (with
its admin notification) and the order are written. Nothing is committed here: the caller's one
commit makes all of it visible at once, or none of it.

A rule the fill breaks (not enough available for margin and fee, a netting increase at another
leverage or margin type, a take profit or stop loss on the wrong side of the fill price, a
close-only market) comes back as the order Rejected (or, for an order that rested before,
Cancelled) with its reason; nothing moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, localcontext

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import Conflict, InsufficientFunds, InvalidInput, InvariantViolation
from bourse.domain.fees import CommissionRule
from bourse.domain.ledger import HOUSE, Bucket, LedgerTransaction, Posting, account_owner
from bourse.domain.margin import Seizable, seize
from bourse.domain.notifications import AdminNotificationType, admin_notification
from bourse.domain.orders import OrderStatus, Side
from bourse.domain.positions import (
    EXACT,
    ONE,
    ZERO,
    AccountKind,
    MarginType,
    Position,
    PositionSide,
    apply_fill,
    derivative_fee,
    notional,
    round_half_even,
    round_to,
)
from bourse.domain.pricing import DealerQuote
from bourse.domain.triggers import (
    StopLoss,
    TakeProfitLevel,
    Triggers,
    TriggerType,
    new_trailing_stop,
    trailing_rate_from_price,
    trigger_values,
    validate_trailing_rate,
)
from bourse.domain.values import AccountId, AssetId, normalized
from bourse.service import hedging
from bourse.service.context import RequestMeta
from bourse.service.derivatives_context import Contract, Rates, selected_assets
from bourse.service.derivatives_records import (
    CollateralSeizure,
    Deficit,
    DeficitKind,
    DerivativeOrder,
    DerivativeReject,
    PositionExecution,
    TriggerRequest,
)
from bourse.service.ledger import post
from bourse.service.ports import UnitOfWork

DEFICIT_TITLE = "Position loss beyond the account's funds"


@dataclass(frozen=True, slots=True)
class FillPrice:
    """Where a fill executes: the dealer's price and the source's price before the markup."""

    price: Decimal
    raw: Decimal

    @classmethod
    def of(cls, quote: DealerQuote, side: Side) -> FillPrice:
        return cls(quote.ask, quote.raw_ask) if side is Side.BUY else cls(quote.bid, quote.raw_bid)


def crosses(order: DerivativeOrder, quote: DealerQuote) -> bool:
    """A resting limit order fills once the dealer's price reaches its limit (or better)."""
    assert order.price is not None
    return quote.ask <= order.price if order.side is Side.BUY else quote.bid >= order.price


def reject(order: DerivativeOrder, reason: DerivativeReject, now: datetime) -> DerivativeOrder:
    """Refused when placed: Rejected. An order that rested (or waited) before: Cancelled."""
    rested = order.status in (OrderStatus.PLACED,) or order.stop_status is not None
    return order.but(
        status=OrderStatus.CANCELLED if rested else OrderStatus.REJECTED,
        reject_reason=reason.value,
        updated_at=now,
    )


def build_triggers(
    request: TriggerRequest,
    side: PositionSide,
    lots: Decimal,
    entry: Decimal,
    reference: Decimal,
    c: Contract,
) -> Triggers | None:
    """The triggers an order asked for, on the position it opens at ``entry`` (``reference``: the
    price they must lie beyond). InvalidInput when one is on the wrong side or off the tick."""
    if request.empty:
        return None
    base = c.spec.base(lots)
    triggers = Triggers()
    if request.take_profit is not None:
        v = trigger_values(
            "tp", side, entry, base, c.spec, TriggerType.PRICE, request.take_profit, reference=reference
        )
        triggers.take_profit = [TakeProfitLevel(v.price, lots)]
    if request.stop_loss is not None:
        v = trigger_values(
            "sl", side, entry, base, c.spec, TriggerType.PRICE, request.stop_loss, reference=reference
        )
        if request.trailing:
            rate = (
                validate_trailing_rate(request.trailing_rate)
                if request.trailing_rate is not None
                else trailing_rate_from_price(v.price, reference)
            )
            triggers.stop_loss = new_trailing_stop(side, reference, rate, c.spec, request.stop_limit_price)
        else:
            triggers.stop_loss = StopLoss(v.price, request.stop_limit_price)
    return triggers


def _split(total: Decimal, parts: Sequence[Decimal], scale: int) -> list[Decimal]:
    """``total`` shared in proportion to ``parts`` (rounded down; the last takes the rest)."""
    whole = sum(parts, ZERO)
    out: list[Decimal] = []
    with localcontext(EXACT):
        for part in parts[:-1]:
            out.append(round_to(total * part / whole, scale, ROUND_FLOOR))
        out.append(total - sum(out, ZERO))
    return out


async def execute(
    uow: UnitOfWork,
    *,
    order: DerivativeOrder,
    c: Contract,
    kind: AccountKind,
    rule: CommissionRule,
    fill: FillPrice,
    rates: Rates,
    now: datetime,
    mark: Decimal | None,
    actor: str,
    meta: RequestMeta | None = None,
    close_only_market: bool = False,
) -> DerivativeOrder:
    """Fill ``order`` (all its lots; a reduce-only close at most the position's lots now) at
    ``fill``; the order as it stands after (Filled, or Rejected/Cancelled with the reason; a close
    whose position is gone: PositionClosed). The caller writes the order row and commits."""
    account: AccountId = order.account_id
    spec = c.spec
    owner = account_owner(account)
    positions = await uow.derivatives.open_positions(account, c.market.id, for_update=True)
    before = {p.position_id: p for p in positions}
    close_id = order.position_id if order.reduce_only else None
    if close_id is not None and close_id not in before:
        return reject(order, DerivativeReject.POSITION_CLOSED, now)
    lots = order.lots
    if close_id is not None and before[close_id].lots < lots:
        # A close sized when it was placed (a stop loss's resting limit close) whose position was
        # partly closed since: it closes what is left, so the rest of the position keeps its stop.
        lots = before[close_id].lots
    if close_only_market and close_id is None and not _reduces(kind, positions, order):
        return reject(order, DerivativeReject.MARKET_CLOSE_ONLY, now)

    price = fill.price
    opening_side = PositionSide.of(order.side)
    requested: Triggers | None = None
    if close_id is None and not order.triggers.empty:
        try:
            requested = build_triggers(
                order.triggers, opening_side, order.lots, price, mark if mark is not None else price, c
            )
        except InvalidInput:
            return reject(order, DerivativeReject.INVALID_TRIGGER, now)

    available, _ = await uow.derivatives.lock_funds(owner, spec.settlement_asset)
    # At least the minimum fixed with the order when it was placed (each fill pays it).
    fee = derivative_fee(rule, notional(price, lots, spec), lots, spec.settlement_scale, order.min_fee)
    new_id = await uow.derivatives.new_position_id()
    try:
        result = apply_fill(
            kind=kind,
            spec=spec,
            positions=positions,
            side=order.side,
            lots=lots,
            price=price,
            leverage=order.leverage,
            margin_type=order.margin_type,
            fee=fee,
            available=available,
            new_position_id=new_id,
            now=now,
            close_position_id=close_id,
            business_key=f"derivative:{order.order_id}:fill",
            asset=spec.settlement_asset,
            account_id=account,
        )
    except InsufficientFunds:
        return reject(order, DerivativeReject.INSUFFICIENT_MARGIN, now)
    except InvalidInput as e:
        field = e.details.get("field")
        reason = (
            DerivativeReject.INVALID_LEVERAGE
            if field == "leverage"
            else DerivativeReject.INVALID_MARGIN_TYPE
            if field == "marginType"
            else DerivativeReject.INVALID_QUANTITY
        )
        return reject(order, reason, now)
    if result.postings is None:
        raise InvariantViolation("a fill moved no money", order_id=order.order_id)
    tx_id = await post(uow, result.postings, actor=actor, subject=f"account:{account}", meta=meta)
    rate = await rates.get(spec.settlement_asset)

    # The positions, their triggers.
    changed = [*result.changed, *([result.opened] if result.opened else [])]
    await uow.derivatives.save_positions(changed, order.order_id)
    for p in result.changed:
        if not p.is_open:
            await uow.derivatives.save_triggers(p.position_id, None)
    if requested is not None:
        target = result.opened or next(
            (p for p in result.changed if p.is_open and p.side is opening_side), None
        )
        if target is not None:
            if target is not result.opened:  # a netting increase: the ladder covers the whole position
                requested.take_profit = [
                    TakeProfitLevel(lv.price, target.lots) for lv in requested.take_profit
                ]
            await uow.derivatives.save_triggers(target.position_id, requested)

    # One execution per position the fill touched.
    rows = _executions(
        order, before, result.changed, result.opened, result.realized_pnl, fill, c, rate, tx_id, now
    )
    fees = _split(result.fee, [r.lots for r in rows], spec.settlement_scale)
    rows = [_with_fee(r, f) for r, f in zip(rows, fees, strict=True)]
    execution_ids = await uow.derivatives.add_executions(rows)

    if result.deficit > 0:
        reduced = next(
            p for p in result.changed if p.position_id in before and p.lots < before[p.position_id].lots
        )
        await record_deficit(
            uow,
            Deficit(
                business_key=f"deficit:order:{order.order_id}",
                account_id=account,
                market_id=c.market.id,
                asset=spec.settlement_asset,
                amount=result.deficit,
                kind=DeficitKind.CLOSE,
                created_at=now,
                position_id=reduced.position_id,
                order_id=order.order_id,
            ),
            actor=actor,
            meta=meta,
            root=rates.root,
        )

    base = spec.base(lots)
    with localcontext(EXACT):
        quote_amount = price * base
    # A-book: the house's side of this fill is hedged at a venue if the market says so (an outbox
    # row in this same transaction; service/hedging.py sends it).
    await hedging.enqueue(
        uow,
        hedging.HedgeFill(
            order.order_id,
            execution_ids[0] if execution_ids else None,
            account,
            c.market.id,
            order.side,
            base,
            price,
            c.market.amount_scale,
            now,
        ),
    )
    # The position the order ends up in: the one it opened (a flip's new one), else the one it changed.
    target_id = result.opened.position_id if result.opened is not None else result.changed[0].position_id
    return order.but(
        status=OrderStatus.FILLED,
        remaining_lots=ZERO,
        executed_base=base,
        executed_quote=quote_amount,
        commission=result.fee,
        realized_pnl=result.realized_pnl,
        position_id=target_id,
        updated_at=now,
    )


def _reduces(kind: AccountKind, positions: Sequence[Position], order: DerivativeOrder) -> bool:
    """On a close-only market a netting order may reduce its position (never flip it)."""
    if kind is not AccountKind.NETTING:
        return False
    mine = [p for p in positions if p.is_open]
    return bool(mine) and mine[0].side.closing_side is order.side and order.lots <= mine[0].lots


def _executions(
    order: DerivativeOrder,
    before: dict[str, Position],
    changed: Sequence[Position],
    opened: Position | None,
    realized_pnl: Decimal,
    fill: FillPrice,
    c: Contract,
    rate: Decimal | None,
    tx_id: int,
    now: datetime,
) -> list[PositionExecution]:
    spec = c.spec

    def row(
        position: Position, lots: Decimal, closed: Decimal, pnl: Decimal, entry: Decimal
    ) -> PositionExecution:
        base = spec.base(lots)
        with localcontext(EXACT):
            markup = round_half_even(abs(fill.price - fill.raw) * base, spec.settlement_scale)
        return PositionExecution(
            order_id=order.order_id,
            position_id=position.position_id,
            account_id=order.account_id,
            market_id=c.market.id,
            side=order.side,
            reason=order.reason,
            lots=lots,
            base_amount=base,
            price=fill.price,
            raw_price=fill.raw,
            markup=markup,
            fee=ZERO,
            fee_asset=spec.settlement_asset,
            realized_pnl=pnl,
            closed_lots=closed,
            entry_price=entry,
            rate_to_rat=rate,
            ledger_tx_id=tx_id,
            created_at=now,
        )

    rows = []
    for p in changed:
        old = before[p.position_id]
        if p.lots < old.lots:
            closed = old.lots - p.lots
            rows.append(row(p, closed, closed, realized_pnl, old.entry_price))
        else:
            rows.append(row(p, p.lots - old.lots, ZERO, ZERO, p.entry_price))
    if opened is not None:
        rows.append(row(opened, opened.lots, ZERO, ZERO, opened.entry_price))
    return rows


def _with_fee(e: PositionExecution, fee: Decimal) -> PositionExecution:
    return replace(e, fee=fee)


SEIZURE_KIND = "position.collateral_seizure"
SEIZURE_TITLE = "Collateral seized for a position loss"


async def record_deficit(
    uow: UnitOfWork,
    deficit: Deficit,
    *,
    actor: str,
    meta: RequestMeta | None,
    root: AssetId | None = None,
) -> None:
    """A loss the account could not pay in the settlement asset, in the caller's unit of work.

    A Cross position's loss is owed by the whole account: its other selected margin assets (that
    counted in its margin level) pay first (``_seize``: one ledger transaction, asset available ->
    ``sys:house``, a ``collateral_seizures`` row each). Only the rest is a deficit: its row, an
    audit entry. Staff get one admin notification: ``PositionDeficit`` (naming any seizure) when
    something is left to the house, else ``CollateralSeized``. A business key seen before writes
    nothing. ``root``: the platform's root asset (selected as margin unless unselected); without
    it only explicitly selected assets are seized."""
    seized = await _seize(uow, deficit, root, actor, meta)
    if seized is None:
        return  # done before
    rest = deficit.amount if not seized else seized[-1][1]
    seizures = [s for s, _ in seized]
    details: dict[str, object] = {
        "accountId": deficit.account_id,
        "marketId": deficit.market_id,
        "positionId": deficit.position_id,
        "orderId": None if deficit.order_id is None else str(deficit.order_id),
        "assetId": deficit.asset,
        "amount": format(normalized(rest), "f"),
        "kind": deficit.kind.value,
        "seized": [{"assetId": s.asset, "amount": format(normalized(s.amount), "f")} for s in seizures],
    }
    took = "; ".join(f"{format(normalized(s.amount), 'f')} {s.asset}" for s in seizures)
    if rest <= 0:
        await uow.notifications.add_admin(
            admin_notification(
                AdminNotificationType.COLLATERAL_SEIZED,
                SEIZURE_TITLE,
                f"Account {deficit.account_id} could not pay a {deficit.kind.value.lower()} loss on"
                f" {deficit.market_id} in {deficit.asset}; {took} of its other margin assets paid it.",
                details,
                deficit.created_at,
                dedupe_key=deficit.business_key,
            )
        )
        return
    if not await uow.derivatives.add_deficit(replace(deficit, amount=rest)):
        return
    meta = meta or RequestMeta()
    await uow.audit.append(
        AuditEntry(
            actor,
            AuditAction.DEFICIT_ABSORBED,
            f"account:{deficit.account_id}",
            meta.request_id,
            meta.ip,
            details,
        )
    )
    also = f" ({took} of its other margin assets paid part of it)" if seizures else ""
    await uow.notifications.add_admin(
        admin_notification(
            AdminNotificationType.POSITION_DEFICIT,
            DEFICIT_TITLE,
            f"Account {deficit.account_id} could not pay {details['amount']} {deficit.asset} of a"
            f" {deficit.kind.value.lower()} loss on {deficit.market_id}; the house absorbed it{also}.",
            details,
            deficit.created_at,
            dedupe_key=deficit.business_key,
        )
    )


async def _seize(
    uow: UnitOfWork, deficit: Deficit, root: AssetId | None, actor: str, meta: RequestMeta | None
) -> list[tuple[CollateralSeizure, Decimal]] | None:
    """The seizures towards a Cross position's ``deficit``, each with what was left after it
    (empty: nothing seized); None when its ledger transaction was posted before."""
    if deficit.position_id is None:
        return []
    position = await uow.derivatives.get_position(deficit.position_id)
    if position is None or position.margin_type is not MarginType.CROSS:
        return []  # an Isolated loss is limited to the position's own margin
    account, settlement = deficit.account_id, deficit.asset
    ratios = await uow.derivatives.margin_ratios()
    selection = await uow.derivatives.margin_selection(account)
    others = [a for a in selected_assets(root or settlement, selection, ratios) if a != settlement]
    if not others:
        return []
    owner = account_owner(account)
    rates = Rates(uow, settlement)  # prices in the settlement asset itself
    candidates = []
    for asset_id in others:
        rate = await rates.get(asset_id)
        asset = await uow.assets.get(asset_id)
        if rate is None or asset is None:
            continue  # no price: it never counted in the level either
        available, _ = await uow.derivatives.lock_funds(owner, asset_id)
        candidates.append(Seizable(asset_id, available, rate, ratios.get(asset_id, ONE), asset.scale))
    settlement_asset = await uow.assets.get(settlement)
    scale = settlement_asset.scale if settlement_asset is not None else 18
    taken, rest = seize(deficit.amount, candidates, scale)
    if not taken:
        return []
    postings = []
    for t in taken:
        postings.append(Posting(owner, t.asset_id, Bucket.AVAILABLE, t.amount.copy_negate()))
        postings.append(Posting(HOUSE, t.asset_id, Bucket.AVAILABLE, t.amount))
    tx = LedgerTransaction(
        kind=SEIZURE_KIND,
        postings=tuple(postings),
        business_key=f"seizure:{deficit.business_key}",
        details={"marketId": deficit.market_id, "positionId": deficit.position_id},
    )
    try:
        tx_id = await post(uow, tx, actor=actor, subject=f"account:{account}", meta=meta)
    except Conflict:
        return None
    out = []
    left = deficit.amount
    for t in taken:
        left = max(ZERO, left - t.value)
        row = CollateralSeizure(
            business_key=f"seizure:{deficit.business_key}:{t.asset_id}",
            account_id=account,
            market_id=deficit.market_id,
            kind=deficit.kind,
            settlement_asset=settlement,
            asset=t.asset_id,
            amount=t.amount,
            rate=t.rate,
            value=t.value,
            ledger_tx_id=tx_id,
            created_at=deficit.created_at,
            position_id=deficit.position_id,
            order_id=deficit.order_id,
        )
        await uow.derivatives.add_seizure(row)
        out.append((row, left))
    # what the domain rounded up to the settlement scale is what stays a deficit
    out[-1] = (out[-1][0], rest)
    return out
