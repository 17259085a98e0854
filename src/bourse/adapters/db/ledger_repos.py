"""Ledger and asset repositories on PostgreSQL.

Every account a write touches is locked in one order, by id, before its balance
changes, so two writers never deadlock and a balance cannot change between our
read and our update. A write runs in a savepoint: on any refusal nothing of it is
applied and the unit of work stays usable.

The fast path is one statement: it locks the touched accounts (ids remembered from
earlier writes), inserts the transactions and all postings and adds each account's
net delta; the locked balances it returns are then checked in Python, in order (no
user balance may go negative after any transaction of the batch), and a violation
rolls the savepoint back. When an account id is not known yet (or a remembered one
turned out stale, or the database refused a negative balance), the slow path first
calls ``ledger_lock_accounts`` (migration 0002), which creates missing accounts and
locks them all in id order, checks the balances it returns, then writes.

The database refuses a negative user balance (CHECK) and an unbalanced transaction
(trigger) on its own, whatever the code above does.
"""

from __future__ import annotations

import builtins
import json
import weakref
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import ledger_tables as lt
from bourse.domain.errors import (
    BourseError,
    Conflict,
    InsufficientFunds,
    InvalidInput,
    InvariantViolation,
    NotFound,
)
from bourse.domain.ledger import (
    AccountMismatch,
    Asset,
    AssetType,
    Balance,
    Bucket,
    Hold,
    HoldStatus,
    LedgerCheckReport,
    LedgerTransaction,
    UnbalancedTransaction,
    is_system,
    move,
)
from bourse.domain.values import AssetId

AccountKey = tuple[str, str, str]  # owner, asset, bucket


_LOCK = text(
    "SELECT id, owner, asset, bucket, balance FROM ledger_lock_accounts("
    "CAST(:owner AS text[]), CAST(:asset AS text[]), CAST(:bucket AS text[]))"
)

_WRITE = text(
    """
WITH locked AS MATERIALIZED (
    SELECT la.id, la.owner, la.asset, la.bucket, la.balance
      FROM ledger_accounts la
     WHERE la.id = ANY(CAST(:a_id AS bigint[]))
     ORDER BY la.id
       FOR UPDATE
),
src AS MATERIALIZED (
    SELECT nextval('ledger_transactions_id_seq'::regclass) AS id, t.ord, t.kind, t.business_key, t.details
      FROM unnest(CAST(:kinds AS text[]), CAST(:keys AS text[]), CAST(:details AS text[]))
           WITH ORDINALITY AS t(kind, business_key, details, ord)
),
tx AS (
    INSERT INTO ledger_transactions (id, kind, business_key, details)
    SELECT id, kind, business_key, coalesce(CAST(details AS jsonb), '{}') FROM src ORDER BY ord
),
upd AS (
    UPDATE ledger_accounts la SET balance = la.balance + d.delta
      FROM unnest(CAST(:a_id AS bigint[]), CAST(:a_delta AS numeric[])) AS d(id, delta)
      JOIN locked ON locked.id = d.id
     WHERE la.id = d.id AND d.delta <> 0
),
ins AS (
    INSERT INTO ledger_postings (tx_id, account_id, asset, amount)
    SELECT src.id, p.account_id, locked.asset, p.amount
      FROM unnest(CAST(:p_ord AS bigint[]), CAST(:p_account AS bigint[]), CAST(:p_amount AS numeric[]))
           AS p(ord, account_id, amount)
      JOIN src ON src.ord = p.ord
      JOIN locked ON locked.id = p.account_id
)
-- The accounts with their balances as locked (before this statement's update), then the
-- new transaction ids in input order: arrays in one row, cheap to decode.
SELECT (SELECT array_agg(id ORDER BY ord) FROM src) AS tx_ids,
       array_agg(id) AS ids, array_agg(owner) AS owners, array_agg(asset) AS assets,
       array_agg(bucket) AS buckets, array_agg(balance) AS balances
  FROM locked
"""
)

# Account ids never change and accounts are never deleted, so each engine remembers them
# to skip the creation step. A remembered id is verified by the write that uses it.
_ACCOUNT_IDS: weakref.WeakKeyDictionary[Engine, dict[AccountKey, int]] = weakref.WeakKeyDictionary()
_ACCOUNT_IDS_MAX = 200_000


class _StaleAccountIds(Exception):
    """A remembered account id no longer names the expected account: take the slow path."""


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class _Batch:
    """One set-based write: the transactions, their postings, each account's net delta."""

    def __init__(self, txs: Sequence[LedgerTransaction]) -> None:
        if not txs:
            raise InvariantViolation("nothing to apply")
        self.txs = txs
        self.net: dict[AccountKey, Decimal] = {}
        self.debits: dict[AccountKey, Decimal] = {}  # per user account: the sum of its debits
        for tx in txs:
            if not isinstance(tx, LedgerTransaction):
                raise InvariantViolation(f"not a ledger transaction: {tx!r}")
            for p in tx.postings:
                key = (p.owner, str(p.asset), str(p.bucket))
                self.net[key] = self.net.get(key, Decimal(0)) + p.amount
                if p.amount < 0 and not is_system(p.owner):
                    self.debits[key] = self.debits.get(key, Decimal(0)) + p.amount
        # The order in which every writer creates missing accounts.
        self.accounts = sorted(self.net)

    def lock_params(self) -> dict[str, Any]:
        return {
            "owner": [k[0] for k in self.accounts],
            "asset": [k[1] for k in self.accounts],
            "bucket": [k[2] for k in self.accounts],
        }

    def first_overdraft(self, before: dict[AccountKey, Decimal]) -> AccountKey | None:
        """The first user account that goes negative when the transactions apply in order."""
        if all(before[k] + d >= 0 for k, d in self.debits.items()):
            return None  # even all debits and no credit leave every balance covered
        users = {k for k in self.accounts if not is_system(k[0])}
        if len(self.txs) == 1:
            return next((k for k in self.accounts if k in users and before[k] + self.net[k] < 0), None)
        running = dict(before)
        for tx in self.txs:
            touched = []
            for p in tx.postings:
                key = (p.owner, str(p.asset), str(p.bucket))
                running[key] += p.amount
                touched.append(key)
            for key in touched:
                if key in users and running[key] < 0:
                    return key
        return None

    def write_params(self, ids: dict[AccountKey, int]) -> dict[str, Any]:
        p_ord: list[int] = []
        p_account: list[int] = []
        p_amount: list[Decimal] = []
        for ord_, tx in enumerate(self.txs, 1):
            for p in tx.postings:
                p_ord.append(ord_)
                p_account.append(ids[(p.owner, str(p.asset), str(p.bucket))])
                p_amount.append(p.amount)
        return {
            "kinds": [tx.kind for tx in self.txs],
            "keys": [tx.business_key for tx in self.txs],
            "details": [
                json.dumps(dict(tx.details), default=_json_default) if tx.details else None for tx in self.txs
            ],
            # Every touched account, also one whose net delta is zero: it is locked all the same.
            "a_id": [ids[k] for k in self.accounts],
            "a_delta": [self.net[k] for k in self.accounts],
            "p_ord": p_ord,
            "p_account": p_account,
            "p_amount": p_amount,
        }


def _pg_error(e: DBAPIError) -> Any:
    """The asyncpg exception behind a SQLAlchemy one (it carries sqlstate, constraint_name, detail)."""
    orig = e.orig
    cause = getattr(orig, "__cause__", None)
    return cause if cause is not None and hasattr(cause, "sqlstate") else orig


def _sqlstate(e: DBAPIError) -> str | None:
    pg = _pg_error(e)
    return getattr(pg, "sqlstate", None) or getattr(e.orig, "pgcode", None)


def _constraint(e: DBAPIError) -> str:
    return str(getattr(_pg_error(e), "constraint_name", None) or "")


def _detail(e: DBAPIError) -> str:
    return str(getattr(_pg_error(e), "detail", None) or getattr(_pg_error(e), "message", None) or e)


def translate(e: DBAPIError) -> BourseError | None:
    """A ledger-relevant database refusal as a BourseError; None for anything else."""
    state, constraint = _sqlstate(e), _constraint(e)
    if state == "23505" and "business_key" in constraint:
        return Conflict(f"business key already used: {_detail(e)}", field="business_key")
    if state == "23503" and "asset" in constraint:
        return NotFound(f"unknown asset: {_detail(e)}", field="asset")
    if state == "23514" and constraint == "ledger_postings_balanced":
        return InvariantViolation(str(_pg_error(e)))
    if state == "22003":
        return InvalidInput("amount out of range", field="amount")
    if state in ("40P01", "40001"):
        return Conflict("concurrent ledger update, retry", retryable=True)
    return None


def _is_negative_balance(e: DBAPIError) -> bool:
    return _sqlstate(e) == "23514" and _constraint(e) == "ck_ledger_accounts_non_negative"


def _hold(row: Any) -> Hold:
    return Hold(
        id=int(row.id),
        owner=row.owner,
        asset=AssetId(row.asset),
        amount=row.amount,
        status=HoldStatus(row.status),
        reference=row.reference,
    )


class SqlLedgerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    # --- writes ------------------------------------------------------------------------------

    async def apply(self, tx: LedgerTransaction) -> int:
        return (await self.apply_many((tx,)))[0]

    async def apply_many(self, txs: Sequence[LedgerTransaction]) -> builtins.list[int]:
        batch = _Batch(txs)
        known = _ACCOUNT_IDS.setdefault(self._c.sync_engine, {})
        ids = {k: known[k] for k in batch.accounts if k in known}
        if len(ids) == len(batch.accounts):
            try:
                async with self._c.begin_nested():
                    return await self._write(batch, ids)
            except _StaleAccountIds:
                known.clear()
            except DBAPIError as e:
                error = translate(e)
                if isinstance(error, Conflict):
                    raise error from e
                if not _is_negative_balance(e):
                    # A remembered account that does not exist (its creation was rolled back)
                    # drops its postings and unbalances the write: forget, and start over.
                    known.clear()
                # The slow path names the overdrawn account, or repeats the real error.
        try:
            async with self._c.begin_nested():
                rows = (await self._c.execute(_LOCK, batch.lock_params())).all()
                locked = {(r.owner, r.asset, r.bucket): (int(r.id), r.balance) for r in rows}
                if len(locked) != len(batch.accounts):
                    raise InvariantViolation("ledger accounts missing after creation")
                overdraft = batch.first_overdraft({k: v[1] for k, v in locked.items()})
                if overdraft is not None:
                    raise _insufficient(overdraft)
                tx_ids = await self._write(batch, {k: v[0] for k, v in locked.items()})
        except DBAPIError as e:
            if _is_negative_balance(e):  # the check above should have caught it: keep the refusal
                raise InsufficientFunds("a user balance would go negative") from e
            raise translate(e) or e from e
        if len(known) > _ACCOUNT_IDS_MAX:
            known.clear()
        known.update((k, v[0]) for k, v in locked.items())
        return tx_ids

    async def _write(self, batch: _Batch, ids: dict[AccountKey, int]) -> builtins.list[int]:
        """Inside a savepoint: raising here undoes the write."""
        row = (await self._c.execute(_WRITE, batch.write_params(ids))).one()
        locked = list(zip(row.owners or (), row.assets or (), row.buckets or (), strict=True))
        if len(locked) != len(batch.accounts) or any(
            ids.get(k) != i for k, i in zip(locked, row.ids, strict=True)
        ):
            raise _StaleAccountIds
        tx_ids = [int(i) for i in row.tx_ids]
        if len(tx_ids) != len(batch.txs):
            raise InvariantViolation("ledger write returned an unexpected number of transactions")
        overdraft = batch.first_overdraft(dict(zip(locked, row.balances, strict=True)))
        if overdraft is not None:
            raise _insufficient(overdraft)
        return tx_ids

    # --- reads -------------------------------------------------------------------------------

    async def balance(self, owner: str, asset: AssetId, bucket: str) -> Decimal:
        la = lt.ledger_accounts
        value = (
            await self._c.execute(
                select(la.c.balance).where(
                    and_(la.c.owner == owner, la.c.asset == str(asset), la.c.bucket == str(bucket))
                )
            )
        ).scalar_one_or_none()
        return value if value is not None else Decimal(0)

    async def balances(self, owner: str) -> builtins.list[Balance]:
        la = lt.ledger_accounts
        rows = await self._c.execute(
            select(la.c.asset, la.c.bucket, la.c.balance)
            .where(la.c.owner == owner)
            .order_by(la.c.asset, la.c.bucket)
        )
        return [Balance(owner, AssetId(r.asset), r.bucket, r.balance) for r in rows]

    # --- holds -------------------------------------------------------------------------------

    async def place_hold(
        self, owner: str, asset: AssetId, amount: Decimal, reference: str, kind: str
    ) -> Hold:
        tx = move(
            kind,
            asset,
            amount,
            (owner, Bucket.AVAILABLE),
            (owner, Bucket.LOCKED),
            details={"reference": reference},
        )
        async with self._c.begin_nested():
            tx_id = await self.apply(tx)
            row = (
                await self._c.execute(
                    insert(lt.holds)
                    .values(
                        owner=owner,
                        asset=str(asset),
                        amount=amount,
                        reference=reference,
                        kind=kind,
                        place_tx_id=tx_id,
                    )
                    .returning(*lt.holds.c)
                )
            ).one()
        return _hold(row)

    async def get_hold(self, hold_id: int, *, for_update: bool = False) -> Hold | None:
        stmt = select(lt.holds).where(lt.holds.c.id == hold_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return _hold(row) if row else None

    async def post_hold(self, hold_id: int, dst: tuple[str, str], kind: str) -> int:
        return await self._settle(hold_id, HoldStatus.POSTED, dst, kind)

    async def void_hold(self, hold_id: int, kind: str) -> int:
        return await self._settle(hold_id, HoldStatus.VOIDED, None, kind)

    async def _settle(self, hold_id: int, status: HoldStatus, dst: tuple[str, str] | None, kind: str) -> int:
        async with self._c.begin_nested():
            # The row lock makes a concurrent post and void of one hold take turns; the
            # loser then sees the hold settled. The business key refuses a second settlement
            # even if that check were ever bypassed.
            hold = await self.get_hold(hold_id, for_update=True)
            if hold is None:
                raise NotFound(f"hold {hold_id} not found", hold_id=hold_id)
            if hold.status is not HoldStatus.PENDING:
                raise Conflict(
                    f"hold {hold_id} is {hold.status.value}", hold_id=hold_id, status=hold.status.value
                )
            target = dst if dst is not None else (hold.owner, Bucket.AVAILABLE)
            tx_id = await self.apply(
                move(
                    kind,
                    hold.asset,
                    hold.amount,
                    (hold.owner, Bucket.LOCKED),
                    target,
                    business_key=f"hold:{hold_id}:settle",
                    details={"hold_id": hold_id, "reference": hold.reference, "status": status.value},
                )
            )
            h = lt.holds
            done = await self._c.execute(
                update(h)
                .where(and_(h.c.id == hold_id, h.c.status == HoldStatus.PENDING.value))
                .values(status=status.value, settle_tx_id=tx_id, updated_at=func.now())
            )
            if done.rowcount != 1:
                raise Conflict(f"hold {hold_id} is no longer pending", hold_id=hold_id)
        return tx_id

    # --- consistency -------------------------------------------------------------------------

    async def check(self) -> LedgerCheckReport:
        mismatches = await self._c.execute(
            text(
                """
                SELECT la.owner, la.asset, la.bucket, la.balance AS stored, coalesce(p.total, 0) AS recomputed
                  FROM ledger_accounts la
                  LEFT JOIN (SELECT account_id, sum(amount) AS total
                               FROM ledger_postings GROUP BY account_id) p ON p.account_id = la.id
                 WHERE la.balance IS DISTINCT FROM coalesce(p.total, 0)
                 ORDER BY la.owner, la.asset, la.bucket
                """
            )
        )
        unbalanced = await self._c.execute(
            text(
                "SELECT tx_id, asset, sum(amount) AS total FROM ledger_postings GROUP BY tx_id, asset "
                "HAVING sum(amount) <> 0 ORDER BY tx_id, asset"
            )
        )
        totals = await self._c.execute(
            text(
                "SELECT asset, sum(amount) AS total, count(*) AS n "
                "FROM ledger_postings GROUP BY asset ORDER BY asset"
            )
        )
        negative = await self._c.execute(
            text(
                "SELECT owner, asset, bucket, balance FROM ledger_accounts "
                "WHERE owner NOT LIKE 'sys:%' AND balance < 0 ORDER BY owner, asset, bucket"
            )
        )
        counts = (
            await self._c.execute(
                text(
                    "SELECT (SELECT count(*) FROM ledger_accounts), "
                    "(SELECT count(*) FROM ledger_transactions)"
                )
            )
        ).one()
        total_rows = totals.all()
        return LedgerCheckReport(
            accounts=int(counts[0]),
            transactions=int(counts[1]),
            postings=sum(int(r.n) for r in total_rows),
            mismatches=tuple(
                AccountMismatch(r.owner, AssetId(r.asset), r.bucket, r.stored, r.recomputed)
                for r in mismatches
            ),
            unbalanced=tuple(
                UnbalancedTransaction(int(r.tx_id), AssetId(r.asset), r.total) for r in unbalanced
            ),
            asset_totals={r.asset: r.total for r in total_rows},
            negative_user_balances=tuple(
                Balance(r.owner, AssetId(r.asset), r.bucket, r.balance) for r in negative
            ),
        )


def _insufficient(key: AccountKey) -> InsufficientFunds:
    owner, asset, bucket = key
    return InsufficientFunds(
        f"insufficient {bucket} {asset} of {owner}", owner=owner, asset=asset, bucket=bucket
    )


def _asset(row: Any) -> Asset:
    return Asset(
        id=AssetId(row.id), name=row.name, scale=int(row.scale), type=AssetType(row.type), source=row.source
    )


class SqlAssetRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, asset: Asset) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    insert(lt.assets).values(
                        id=str(asset.id),
                        name=asset.name,
                        scale=asset.scale,
                        type=asset.type.value,
                        source=asset.source,
                    )
                )
        except DBAPIError as e:
            if _sqlstate(e) == "23505":
                raise Conflict(f"asset {asset.id} exists", field="id") from e
            raise

    async def update(self, asset: Asset) -> None:
        a = lt.assets
        result = await self._c.execute(
            update(a)
            .where(a.c.id == str(asset.id))
            .values(
                name=asset.name,
                scale=asset.scale,
                type=asset.type.value,
                source=asset.source,
                updated_at=func.now(),
            )
        )
        if result.rowcount != 1:
            raise NotFound(f"asset {asset.id} not found", field="id")

    async def get(self, asset_id: AssetId) -> Asset | None:
        row = (await self._c.execute(select(lt.assets).where(lt.assets.c.id == str(asset_id)))).first()
        return _asset(row) if row else None

    async def list(self) -> builtins.list[Asset]:
        return [_asset(r) for r in await self._c.execute(select(lt.assets).order_by(lt.assets.c.id))]
