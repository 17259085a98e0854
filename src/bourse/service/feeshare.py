"""OTC fee sharing: the daily run (collect, calculate, settle) and the merchants' signed query.

``run_day`` is idempotent and safe to run twice at once or again after a crash:
- collecting inserts each (merchant, coin, day) record once (a unique key; an existing
  record stays as it is);
- calculating moves a record 0 -> 1 with a conditional UPDATE;
- settling locks one record, re-checks its fingerprint and, in the same unit of work,
  posts the share from fee revenue to the merchant's fee pool (business key
  ``feeshare:otc:<id>``) and moves it 1 -> 3. A record whose fingerprint no longer
  matches stays at 1, says so in ``remark`` and raises one staff notification.

A day is counted only once it is over (UTC); the job runs ``run_due`` and catches up
the days it missed (up to a week back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bourse.domain.errors import InvalidInput, NotAuthenticated
from bourse.domain.feeshare import (
    FINGERPRINT_ERROR,
    SETTLEMENT_KIND,
    BadSignature,
    BillingStatus,
    FeeShareRecord,
    Rate,
    UnknownAppKey,
    calculated,
    check_company_id,
    check_past_day,
    check_sign,
    day_bounds,
    fee_pool,
    fingerprint_matches,
    inverse_rate,
    parse_record_query,
)
from bourse.domain.ledger import FEES, Bucket, move
from bourse.domain.notifications import AdminNotificationType, NewAdminNotification, admin_notification
from bourse.domain.values import AssetId
from bourse.service.credentials import CredentialService
from bourse.service.ledger import post
from bourse.service.ports import Clock, UnitOfWork, UnitOfWorkFactory

# Trades of the last moments of a day commit a little after midnight: wait before counting it.
RUN_DELAY = timedelta(minutes=5)
CATCH_UP_DAYS = 7


@dataclass(frozen=True, slots=True)
class RunSummary:
    day: date
    collected: int  # records created by this run
    calculated: int  # records this run moved to Calculated
    settled: int  # records this run settled
    refused: int  # records left unsettled because their fingerprint does not match
    records: int  # the day's records
    settled_total: int  # the day's settled records

    def json(self) -> dict[str, object]:
        return {
            "date": self.day.isoformat(),
            "collected": self.collected,
            "calculated": self.calculated,
            "settled": self.settled,
            "refused": self.refused,
            "records": self.records,
            "settledTotal": self.settled_total,
        }


@dataclass(frozen=True, slots=True)
class RecordPage:
    count: int
    records: list[FeeShareRecord]


class FeeShareService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, credentials: CredentialService) -> None:
        self._uow = uow
        self._clock = clock
        self._credentials = credentials

    # --- the daily run ---------------------------------------------------------------------------

    async def run_day(self, day: date, *, actor: str = "feeshare") -> RunSummary:
        check_past_day(day, self._clock.now())
        collected = await self.collect(day)
        calculated_count = await self.calculate(day)
        settled, refused = await self.settle(day, actor=actor)
        async with self._uow() as uow:
            records = await uow.feeshare.day_records(day)
            settled_total = sum(1 for r in records if r.status is BillingStatus.SETTLED)
            refused_total = sum(1 for r in records if r.status is BillingStatus.CALCULATED)
            await uow.feeshare.complete_run(
                day, len(records), settled_total, refused_total, self._clock.now()
            )
            await uow.commit()
        return RunSummary(day, collected, calculated_count, settled, refused, len(records), settled_total)

    async def run_due(self) -> bool:
        """Run every day that is due and not completed yet (yesterday once RUN_DELAY past midnight)."""
        now = self._clock.now().astimezone(UTC)
        latest = now.date() - timedelta(days=1 if now - day_bounds(now.date())[0] >= RUN_DELAY else 2)
        async with self._uow() as uow:
            last = await uow.feeshare.last_run()
        first = (
            latest
            if last is None
            else max(last + timedelta(days=1), latest - timedelta(days=CATCH_UP_DAYS - 1))
        )
        day = first
        while day <= latest:
            await self.run_day(day, actor="job")
            day += timedelta(days=1)
        return False

    async def collect(self, day: date) -> int:
        """Stage 0: the day's statistics per merchant and coin, with each merchant's terms as they are now."""
        check_past_day(day, self._clock.now())
        start, end = day_bounds(day)
        async with self._uow() as uow:
            stats = await uow.feeshare.statistics(start, end)
            rows = []
            for s in stats:
                merchant = await uow.merchants.get(s.company_id)
                if merchant is not None:
                    rows.append((s, merchant.terms))
            added = await uow.feeshare.add_statistics(day, rows, self._clock.now())
            await uow.commit()
        return added

    async def calculate(self, day: date) -> int:
        """Stage 0 -> 1 for the day's records."""
        count = 0
        async with self._uow() as uow:
            for record in await uow.feeshare.day_records(day, BillingStatus.STATISTIC):
                asset = await uow.assets.get(record.coin)
                scale = asset.scale if asset is not None else 0
                rate = await _rate(uow, record, day_bounds(day)[1])
                if await uow.feeshare.save_calculated(calculated(record, scale, rate, self._clock.now())):
                    count += 1
            await uow.commit()
        return count

    async def settle(self, day: date, *, actor: str = "feeshare") -> tuple[int, int]:
        """Stage 1 -> 3, one unit of work per record: (settled, refused)."""
        async with self._uow() as uow:
            pending = [r.id for r in await uow.feeshare.day_records(day, BillingStatus.CALCULATED)]
        settled = refused = 0
        for record_id in pending:
            outcome = await self._settle_one(record_id, actor)
            settled += outcome == "settled"
            refused += outcome == "refused"
        return settled, refused

    async def _settle_one(self, record_id: int, actor: str) -> str:
        now = self._clock.now()
        async with self._uow() as uow:
            record = await uow.feeshare.get(record_id, for_update=True)
            if record is None or record.status is not BillingStatus.CALCULATED:
                return "done"  # another run got there first
            if not fingerprint_matches(record):
                if record.remark != FINGERPRINT_ERROR:
                    await uow.feeshare.set_remark(record.id, FINGERPRINT_ERROR, now)
                await uow.notifications.add_admin(_mismatch_notification(record, now))
                await uow.commit()
                return "refused"
            tx_id = None
            if record.share > 0:
                tx = move(
                    SETTLEMENT_KIND,
                    record.coin,
                    record.share,
                    (FEES, Bucket.AVAILABLE),
                    (fee_pool(record.company_id), Bucket.AVAILABLE),
                    business_key=f"feeshare:otc:{record.id}",
                    details={
                        "recordId": record.id,
                        "companyId": record.company_id,
                        "day": record.item_date.isoformat(),
                    },
                )
                tx_id = await post(uow, tx, actor=actor, subject=f"merchant:{record.company_id}")
            if not await uow.feeshare.mark_settled(record.id, tx_id, now):
                return "done"  # cannot happen under the row lock; rolled back if it did
            await uow.commit()
        return "settled"

    # --- the merchants' query ----------------------------------------------------------------------

    async def records(self, params: Mapping[str, str]) -> RecordPage:
        """The signed query of otc-fee-sharing.md: the caller's own records only.

        The caller is authenticated before any other parameter is looked at: an unsigned request
        learns nothing, not even which parameter it got wrong."""
        company_id = await self._authenticate(params)
        query = parse_record_query(params, self._clock.now())
        async with self._uow() as uow:
            count, records = await uow.feeshare.query(company_id, query)
        return RecordPage(count, records)

    async def _authenticate(self, params: Mapping[str, str]) -> int:
        app_key = params.get("appKey", "")
        if not app_key:
            raise UnknownAppKey("appKey is missing")
        try:
            company, secret = await self._credentials.app_secret(app_key)
        except NotAuthenticated:
            raise UnknownAppKey("unknown or revoked appKey") from None
        try:
            company_id = check_company_id(company)
        except InvalidInput:
            raise UnknownAppKey("the appKey is not a merchant's") from None
        async with self._uow() as uow:
            if await uow.merchants.get(company_id) is None:
                raise UnknownAppKey("the appKey is not a merchant's")
        check_sign(secret, params)
        return company_id


async def _rate(uow: UnitOfWork, record: FeeShareRecord, before: datetime) -> Rate | None:
    """The coin's price in the rate symbol at the day's end: the last trade before it on a market
    coin/symbol, else the inverse of one on symbol/coin."""
    coin, symbol = record.coin, record.terms.rate_symbol
    if coin == symbol:
        return None
    direct = await uow.feeshare.latest_price(coin, AssetId(symbol), before)
    if direct is not None:
        return Rate(direct[0], direct[1])
    inverse = await uow.feeshare.latest_price(AssetId(symbol), coin, before)
    if inverse is not None and inverse[0] > 0:
        return Rate(inverse_rate(inverse[0]), inverse[1])
    return None


def _mismatch_notification(record: FeeShareRecord, now: datetime) -> NewAdminNotification:
    return admin_notification(
        AdminNotificationType.FEE_SHARE_FINGERPRINT_MISMATCH,
        "Fee sharing record not settled",
        f"Record {record.id} (merchant {record.company_id}, {record.coin}, {record.item_date.isoformat()}) "
        "no longer matches its fingerprint; it was not settled.",
        {
            "recordId": record.id,
            "companyId": record.company_id,
            "coinSymbol": record.coin,
            "itemDate": record.item_date.isoformat(),
        },
        now,
        dedupe_key=f"feeshare:fingerprint:{record.id}",
    )


__all__ = ["BadSignature", "FeeShareService", "RecordPage", "RunSummary", "UnknownAppKey"]
