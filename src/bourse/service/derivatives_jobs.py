"""What the derivatives jobs call each pass: funding and swap payments (each paid once, a cursor
per market), the dealer job's ``process_order`` (expiry, stop activation, resting fills), and
the passes over triggers and margin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TypeVar

from bourse.domain.audit import AuditAction
from bourse.domain.errors import BourseError, Conflict, InvariantViolation
from bourse.domain.fees import CommissionRule
from bourse.domain.funding import (
    FUNDING_KIND,
    SWAP_KIND,
    funding_payment,
    funding_times,
    settle_payment,
    swap_payment,
)
from bourse.domain.ledger import account_owner
from bourse.domain.markets import MarketType
from bourse.domain.matching.spec import MarketStatus
from bourse.domain.orders import OrderStatus, OrderType, Side, StopStatus
from bourse.domain.positions import ZERO, Position, PositionSide
from bourse.domain.pricing import DealerQuote, FundingRate
from bourse.domain.values import AssetId
from bourse.service.derivatives_base import SYSTEM_ACTOR
from bourse.service.derivatives_context import DERIVATIVE_TYPES, Contract, contract, contract_of
from bourse.service.derivatives_events import Changes, order_changes
from bourse.service.derivatives_fills import crosses, record_deficit, reject
from bourse.service.derivatives_margin import DerivativesMargin
from bourse.service.derivatives_records import (
    Deficit,
    DeficitKind,
    DerivativeOrder,
    DerivativeReject,
    FundingPayment,
    SwapPayment,
)
from bourse.service.derivatives_triggers import DerivativesTriggers
from bourse.service.derivatives_views import OrderView
from bourse.service.ledger import post
from bourse.service.ports import UnitOfWork

_T = TypeVar("_T")
# The payment jobs' cursors (``derivative_job_cursors.job``) and how much one pass pays per market.
FUNDING_JOB = "Funding"
SWAP_JOB = "Swap"
PAYMENT_BATCH = 100


class DerivativesJobs(DerivativesTriggers, DerivativesMargin):
    # --- what the jobs call ------------------------------------------------------------------

    async def pay_funding(self, rate: FundingRate) -> int:
        """For the funding job: pay one stored funding rate of a Perpetual market to each position
        that was open at ``rate.applied_at``, on the lots it had then (a position closed since
        still pays; one opened after does not): ``base * mark * rate`` at the moment's mark
        (``funding_payment``; a positive rate: longs pay, shorts receive), each its own ledger
        transaction against ``sys:house`` with business key
        ``funding:<market>:<applied_at>:<position>`` and a ``funding_payments`` row, so a re-run
        pays nothing twice. A charge beyond the account's available is paid in part and the rest
        is a deficit (PositionDeficit). How many positions were paid."""
        async with self._uow() as uow:
            c = await contract(uow, rate.market_id)
            positions = await uow.derivatives.positions_at(rate.market_id, rate.applied_at)
        paid = 0
        for p in positions:
            key = f"funding:{rate.market_id}:{rate.applied_at.isoformat()}:{p.position_id}"

            def row(tx_id: int | None, amount: Decimal, deficit: Decimal, p: Position = p) -> FundingPayment:
                return FundingPayment(
                    rate.market_id,
                    rate.applied_at,
                    p.position_id,
                    p.account_id,
                    rate.rate,
                    rate.mark,
                    c.settlement_asset,
                    amount,
                    deficit,
                    tx_id,
                    self._clock.now(),
                )

            amount = funding_payment(p, c.spec, rate.mark, rate.rate)
            if await self._pay(p, c, c.settlement_asset, amount, key, FUNDING_KIND, DeficitKind.FUNDING, row):
                paid += 1
        return paid

    async def pay_swaps(self, day: date, market_id: str | None = None) -> int:
        """For the swap job: each Cfd market's (or only ``market_id``'s) daily swap for ``day`` to
        the positions open at ``day`` 00:00 UTC, on the lots they had then (a position closed since
        still pays), at the mark of that moment (``PricingService.mark_at``; the position's entry
        before the market's first mark), in the leg's asset; the size is what the trader receives.
        One ledger transaction each with business key ``swap:<position>:<day>`` and a
        ``swap_payments`` row, so a re-run pays nothing twice. How many were paid."""
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        async with self._uow() as uow:
            markets = [
                m
                for m in await uow.markets.list()
                if m.type is MarketType.CFD and m.swap_settings and market_id in (None, m.id)
            ]
            specs = {m.id: await contract_of(uow, m) for m in markets}
            positions = {m.id: await uow.derivatives.positions_at(m.id, midnight) for m in markets}
            scales = {a.id: a.scale for a in await uow.assets.list()}
        paid = 0
        for market in markets:
            c, swap = specs[market.id], market.swap_settings
            assert swap is not None
            if not positions[market.id]:
                continue
            at_midnight = await self._pricing.mark_at(market.id, midnight)
            for p in positions[market.id]:
                leg = swap.long if p.side is PositionSide.LONG else swap.short
                asset_scale = scales.get(leg.asset_id) if leg is not None else None
                mark = at_midnight.mark if at_midnight is not None else p.entry_price
                due = swap_payment(p, c.spec, swap, mark, asset_scale)
                if due is None:
                    continue
                asset, amount = due
                key = f"swap:{p.position_id}:{day.isoformat()}"

                def row(
                    tx_id: int | None,
                    amount: Decimal,
                    deficit: Decimal,
                    p: Position = p,
                    asset: AssetId = asset,
                ) -> SwapPayment:
                    return SwapPayment(
                        p.market_id,
                        day,
                        p.position_id,
                        p.account_id,
                        asset,
                        amount,
                        deficit,
                        tx_id,
                        self._clock.now(),
                    )

                if await self._pay(p, c, asset, amount, key, SWAP_KIND, DeficitKind.SWAP, row):
                    paid += 1
        return paid

    async def _pay(
        self,
        position: Position,
        c: Contract,
        asset: AssetId,
        amount: Decimal,
        key: str,
        kind: str,
        deficit_kind: DeficitKind,
        row: Callable[[int | None, Decimal, Decimal], FundingPayment | SwapPayment],
    ) -> bool:
        """One payment to (> 0) or from (< 0) the position's account, in one transaction; False when
        it was paid before (its row exists). The position may have closed since its moment: what
        was due then is due still."""
        account = position.account_id
        owner = account_owner(account)
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.derivatives.lock_account(account)
            # What available does not cover comes out of the paying position's own margin (in its
            # settlement asset, while it is open): the trader pays with money it holds before
            # the house absorbs anything. The row is locked before the ledger, as a fill does.
            current = await uow.derivatives.get_position(position.position_id, for_update=True)
            payer = (
                current if current is not None and current.is_open and asset == c.settlement_asset else None
            )
            available, _ = await uow.derivatives.lock_funds(owner, asset)
            tx, from_margin, deficit = settle_payment(
                owner,
                asset,
                amount,
                available,
                key,
                margin=payer.margin if payer is not None else ZERO,
                kind=kind,
                details={"marketId": c.market.id, "positionId": position.position_id},
            )
            tx_id = None
            if tx is not None:
                try:
                    tx_id = await post(uow, tx, actor=SYSTEM_ACTOR, subject=f"account:{account}")
                except Conflict:
                    return False  # its business key was posted before: paid already
            record = row(tx_id, amount, deficit)
            added = (
                await uow.derivatives.add_funding_payment(record)
                if isinstance(record, FundingPayment)
                else await uow.derivatives.add_swap_payment(record)
            )
            if not added:
                return False
            if payer is not None and from_margin > 0:
                # The margin bucket went down by ``from_margin`` in ``tx``: so does the position's
                # margin (the bucket is the sum of the open positions' margin). An existing
                # position's opening order is kept: the order id given is not written.
                await uow.derivatives.save_positions(
                    [replace(payer, margin=payer.margin - from_margin, updated_at=now)], 0
                )
            if deficit > 0:
                await record_deficit(
                    uow,
                    Deficit(
                        business_key=f"deficit:{key}",
                        account_id=account,
                        market_id=c.market.id,
                        asset=asset,
                        amount=deficit,
                        kind=deficit_kind,
                        created_at=now,
                        position_id=position.position_id,
                    ),
                    actor=SYSTEM_ACTOR,
                    meta=None,
                    root=self._root,
                )
            await uow.commit()
        self._publish([Changes.of_balances(account, [asset])])
        return True

    async def run_funding(self, now: datetime | None = None) -> int:
        """One pass of the funding job: for every Perpetual market, pay each stored funding rate
        after the market's cursor (oldest first, up to ``now``) with ``pay_funding``, then move
        the cursor past it, so each funding moment is paid once and a late or restarted job
        catches up. How many positions were paid. A market whose payment fails keeps its cursor
        (retried next pass)."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            markets = [m.id for m in await uow.markets.list() if m.type is MarketType.PERPETUAL]
        paid = 0
        for market_id in markets:
            async with self._uow() as uow:
                cursor = await uow.derivatives.job_cursor(FUNDING_JOB, market_id)
            for rate in await self._pricing.funding_rates_after(market_id, cursor, PAYMENT_BATCH):
                if rate.applied_at > now:
                    break
                got = await self._guarded(self.pay_funding(rate))
                if got is None:
                    break
                paid += got
                await self._advance(FUNDING_JOB, market_id, rate.applied_at)
        return paid

    async def run_swaps(self, now: datetime | None = None) -> int:
        """One pass of the swap job: for every Cfd market with swap settings, pay each day whose
        00:00 UTC is after the market's cursor and not after ``now`` (``pay_swaps``), then move the
        cursor to it: each day is paid once, missed days are caught up (a market never paid
        starts at the first 00:00 after its first position opened). How many were paid."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            markets = [m.id for m in await uow.markets.list() if m.type is MarketType.CFD and m.swap_settings]
        paid = 0
        for market_id in markets:
            async with self._uow() as uow:
                cursor = await uow.derivatives.job_cursor(SWAP_JOB, market_id)
                first = await uow.derivatives.first_opened_at(market_id) if cursor is None else None
            if cursor is not None:
                since = cursor
            elif first is not None:
                since = first - timedelta(microseconds=1)  # a position opened at 00:00 pays that day
            else:
                continue  # no position ever: nothing was due
            for midnight in funding_times(time(0), 24, since, now)[:PAYMENT_BATCH]:
                got = await self._guarded(self.pay_swaps(midnight.date(), market_id))
                if got is None:
                    break
                paid += got
                await self._advance(SWAP_JOB, market_id, midnight)
        return paid

    async def _advance(self, job: str, market_id: str, through: datetime) -> None:
        async with self._uow() as uow:
            await uow.derivatives.set_job_cursor(job, market_id, through, self._clock.now())
            await uow.commit()

    async def run_dealer_orders(self) -> int:
        """One pass of the dealer job: ``process_order`` for every live derivative order (oldest
        first); how many changed. An order whose processing fails is left for the next pass."""
        async with self._uow() as uow:
            live = await uow.derivatives.live_orders()
        changed = 0
        for order in live:
            if await self._guarded(self.process_order(order.order_id)) is not None:
                changed += 1
        return changed

    async def run_triggers(self) -> int:
        """One pass of the trigger job: ``apply_triggers`` for every open position of every market;
        how many closes were placed."""
        async with self._uow() as uow:
            markets = [m.id for m in await uow.markets.list() if m.type in DERIVATIVE_TYPES]
            ids = [p.position_id for m in markets for p in await uow.derivatives.market_positions(m)]
        placed = 0
        for position_id in ids:
            placed += len(await self._guarded(self.apply_triggers(position_id)) or [])
        return placed

    async def run_margin(self) -> int:
        """One pass of the margin job: ``check_margin`` for every account with an open position; how
        many positions were stopped out."""
        async with self._uow() as uow:
            accounts = await uow.derivatives.accounts_with_positions()
        closed = 0
        for account in accounts:
            check = await self._guarded(self.check_margin(account))
            closed += 0 if check is None else len(check.closed)
        return closed

    @staticmethod
    async def _guarded(step: Awaitable[_T]) -> _T | None:
        """One item of a job pass: a refusal (no price, a closed position, ...) skips that item."""
        try:
            return await step
        except InvariantViolation:
            raise  # a bug: the job must say so, not skip it
        except BourseError:
            return None

    async def process_order(self, order_id: int, now: datetime | None = None) -> OrderView | None:
        """For the dealer job: expire a Gtd order past its cancellation date; activate a waiting stop
        whose activation price the mark reached (buy: mark >= activation, sell: mark <= it; a Stop
        then fills at the dealer's price, a StopLimit rests as a limit); fill a resting limit the
        dealer's price reaches (at that price, never worse than the limit). Margin and fee are
        checked when it fills (refused: Cancelled with the reason). Nothing happens on a halted
        market or outside its session. The order when it changed, else None."""
        now = now or self._clock.now()
        async with self._uow() as uow:
            peek = await uow.derivatives.get_order(order_id)
            if peek is None or not peek.is_live:
                return None
            c = await contract(uow, peek.market_id)
            rules = await uow.commissions.rules_for_account(peek.account_id)
            record = await uow.accounts.get(peek.account_id)
        rule = self._rule(rules, c)
        assert record is not None
        quote = await self._quote(c.market.id)
        mark = await self._mark(c.market.id)
        async with self._uow() as uow:
            await uow.derivatives.lock_account(peek.account_id)
            order = await uow.derivatives.get_order(order_id, for_update=True)
            if order is None or not order.is_live:
                return None
            changed = await self._progress(uow, order, c, rule, record.account_type, quote, mark, now)
            if changed is None:
                return None
            await uow.derivatives.update_order(changed)
            await self._audit(uow, SYSTEM_ACTOR, AuditAction.DERIVATIVE_ORDER_PLACED, changed, None)
            view = await self._order_view(uow, changed, c.market)
            changes = await order_changes(uow, changed)
            await uow.commit()
        self._publish([changes])
        return view

    async def _progress(
        self,
        uow: UnitOfWork,
        order: DerivativeOrder,
        c: Contract,
        rule: CommissionRule,
        account_type: str,
        quote: DealerQuote | None,
        mark: Decimal | None,
        now: datetime,
    ) -> DerivativeOrder | None:
        waiting = order.stop_status is StopStatus.WAITING_FOR_ACTIVATION
        if order.cancellation_date is not None and order.cancellation_date <= now:
            return order.but(
                status=OrderStatus.EXPIRED,
                stop_status=StopStatus.CANCELLED if waiting else order.stop_status,
                updated_at=now,
            )
        if order.reduce_only and order.position_id is not None:
            # A resting close (a stop loss's limit close) of a position closed another way meanwhile
            # (the trader, a take profit, a stop-out) has nothing left to close.
            position = await uow.derivatives.get_position(order.position_id)
            if position is None or not position.is_open:
                return reject(order, DerivativeReject.POSITION_CLOSED, now)
        market = c.market
        if market.status is MarketStatus.HALTED or (
            market.calendar is not None and not market.calendar.is_open(now)
        ):
            return None
        current = order
        if waiting:
            assert order.activation_price is not None
            if mark is None:
                return None
            reached = (
                mark >= order.activation_price if order.side is Side.BUY else mark <= order.activation_price
            )
            if not reached:
                return None
            current = order.but(
                stop_status=StopStatus.ACTIVATED,
                status=OrderStatus.PLACED if order.type is OrderType.STOP_LIMIT else order.status,
                updated_at=now,
            )
        at_market = current.type in (OrderType.MARKET, OrderType.STOP)
        if at_market and quote is None:
            return reject(current, DerivativeReject.PRICE_UNAVAILABLE, now)
        if quote is not None and (at_market or crosses(current, quote)):
            return await self._fill(uow, current, c, account_type, rule, quote, mark, now, SYSTEM_ACTOR, None)
        return None if current is order else current
