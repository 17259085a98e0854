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

``apply_many(..., savepoint=False)`` (the engine's group commit, which rolls back the whole
batch on any error and retries it once) skips the savepoint's two round trips: a refusal
then raises with the write still in the unit of work, for the caller's rollback to undo.

The database refuses a negative user balance (CHECK) and an unbalanced transaction
(trigger) on its own, whatever the code above does.
"""

from __future__ import annotations

import builtins
import contextlib
import weakref
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import ledger_tables as lt
from bourse.adapters.db.array_literals import bigints, numerics, texts
from bourse.adapters.db.identity_repos import SqlAuditLog
from bourse.domain.audit import AuditEntry
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
from bourse.domain.values import EXACT, AssetId

AccountKey = tuple[str, str, str]  # owner, asset, bucket


_LOCK = text(
    "SELECT id, owner, asset, bucket, balance FROM ledger_lock_accounts("
    "CAST(:owner AS text[]), CAST(:asset AS text[]), CAST(:bucket AS text[]))"
)

# The ledger write's parts, as common table expressions: ``src`` holds each new transaction's id
# by its position from 1 (``ord``), for a caller's statement that writes more with them
# (``write_with``).
_WRITE_CTES = """
locked AS MATERIALIZED (
    SELECT la.id, la.owner, la.asset, la.bucket, la.balance
      FROM ledger_accounts la
     WHERE la.id = ANY(CAST(CAST(:a_id AS text) AS bigint[]))
     ORDER BY la.id
       FOR NO KEY UPDATE
),
src AS MATERIALIZED (
    SELECT nextval('ledger_transactions_id_seq'::regclass) AS id, t.ord, t.kind, t.business_key, t.details
      FROM unnest(CAST(CAST(:kinds AS text) AS text[]), CAST(CAST(:keys AS text) AS text[]),
                  CAST(CAST(:details AS text) AS text[]))
           WITH ORDINALITY AS t(kind, business_key, details, ord)
),
tx AS (
    INSERT INTO ledger_transactions (id, kind, business_key, details)
    SELECT id, kind, business_key, coalesce(CAST(details AS jsonb), '{}') FROM src ORDER BY ord
),
upd AS (
    -- The sub-select makes the locks come first, before any balance changes.
    UPDATE ledger_accounts la SET balance = la.balance + d.delta
      FROM unnest(CAST(CAST(:a_id AS text) AS bigint[]), CAST(CAST(:a_delta AS text) AS numeric[])) AS d(id, delta)
     WHERE la.id = d.id AND d.delta <> 0 AND (SELECT count(*) FROM locked) > 0
),
ins AS (
    INSERT INTO ledger_postings (tx_id, account_id, asset, amount)
    SELECT src.id, p.account_id, p.asset, p.amount
      FROM unnest(CAST(CAST(:p_ord AS text) AS bigint[]), CAST(CAST(:p_account AS text) AS bigint[]),
                  CAST(CAST(:p_asset AS text) AS text[]),
                  CAST(CAST(:p_amount AS text) AS numeric[])) AS p(ord, account_id, asset, amount)
      JOIN src ON src.ord = p.ord
)
"""
# The balances as locked (before this statement's update) and the new transaction ids in input
# order, as arrays in one row (the select list of a query over ``locked``); the database's oid
# tells remembered ids are still valid.
_WRITE_RESULT = """
(SELECT array_agg(id ORDER BY ord) FROM src) AS tx_ids,
array_agg(id) AS ids, array_agg(balance) AS balances,
(SELECT oid FROM pg_database WHERE datname = current_database()) AS database
"""
_WRITE = text(f"WITH {_WRITE_CTES} SELECT {_WRITE_RESULT} FROM locked")  # noqa: S608 - constant text


class LedgerTail(NamedTuple):
    """More of a caller's statement after the ledger write: common table expressions (which may
    read ``src(id, ord)``), scalar expressions for the select list, and their parameters."""

    ctes: str
    select: str
    params: dict[str, Any]


_TAIL_STATEMENTS: dict[tuple[str, str], Any] = {}

# ``post_audited``'s tail: the audit row as SqlAuditLog writes it, with the transaction's id.
_AUDIT_CTE = (
    "a AS (INSERT INTO audit_log (actor, action, subject, request_id, ip, details) "
    "SELECT :a_actor, :a_action, :a_subject, :a_request_id, :a_ip, "
    "jsonb_build_object('tx_id', (SELECT id FROM src WHERE ord = 1)) || CAST(:a_details AS jsonb))"
)


def _with_tail(tail: LedgerTail) -> Any:
    key = (tail.ctes, tail.select)
    statement = _TAIL_STATEMENTS.get(key)
    if statement is None:
        statement = _TAIL_STATEMENTS[key] = text(
            f"WITH {_WRITE_CTES}, {tail.ctes} SELECT {_WRITE_RESULT}, {tail.select} FROM locked"  # noqa: S608
        )
    return statement


class _KnownAccounts:
    """Account ids never change and accounts are never deleted, so each engine remembers them
    and skips the creation step. The database's oid guards against a recreated database; a
    remembered id whose creation was rolled back shows up missing in the write that uses it."""

    MAX = 200_000

    def __init__(self) -> None:
        self.database: int | None = None
        self.ids: dict[AccountKey, int] = {}

    def forget(self) -> None:
        self.database = None
        self.ids.clear()

    def learn(self, database: int, ids: dict[AccountKey, int]) -> None:
        if database != self.database or len(self.ids) > self.MAX:
            self.forget()
            self.database = database
        self.ids.update(ids)


_KNOWN: weakref.WeakKeyDictionary[Engine, _KnownAccounts] = weakref.WeakKeyDictionary()


class _StaleAccountIds(Exception):
    """A remembered account id no longer names the expected account: take the slow path."""


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_ZERO = Decimal(0)


class _Batch:
    """One set-based write: the transactions, their postings, each account's net delta."""

    def __init__(self, txs: Sequence[LedgerTransaction]) -> None:
        if not txs:
            raise InvariantViolation("nothing to apply")
        self.txs = txs
        # One row per posting: (transaction's position from 1, account, amount).
        self.rows: list[tuple[int, AccountKey, Decimal]] = []
        net: dict[AccountKey, Decimal] = {}
        debits: dict[AccountKey, Decimal] = {}  # per user account: the sum of its debits
        for ord_, tx in enumerate(txs, 1):
            if not isinstance(tx, LedgerTransaction):
                raise InvariantViolation(f"not a ledger transaction: {tx!r}")
            for p in tx.postings:
                key = (p.owner, str(p.asset), str(p.bucket))
                amount = p.amount
                self.rows.append((ord_, key, amount))
                net[key] = EXACT.add(net.get(key, _ZERO), amount)
                if amount < 0 and not is_system(key[0]):
                    debits[key] = EXACT.add(debits.get(key, _ZERO), amount)
        self.net = net
        self.debits = debits

    @property
    def accounts(self) -> list[AccountKey]:
        """Sorted: the order in which every writer creates missing accounts."""
        return sorted(self.net)

    def lock_params(self) -> dict[str, Any]:
        accounts = self.accounts
        return {
            "owner": [k[0] for k in accounts],
            "asset": [k[1] for k in accounts],
            "bucket": [k[2] for k in accounts],
        }

    def first_overdraft(self, before: dict[AccountKey, Decimal]) -> AccountKey | None:
        """The first user account that goes negative when the transactions apply in order."""
        if all(EXACT.add(before[k], d) >= 0 for k, d in self.debits.items()):
            return None  # even all debits and no credit leave every balance covered
        running = dict(before)
        rows = self.rows
        i = 0
        while i < len(rows):
            ord_, touched = rows[i][0], []
            while i < len(rows) and rows[i][0] == ord_:
                _, key, amount = rows[i]
                running[key] = EXACT.add(running[key], amount)
                touched.append(key)
                i += 1
            # Checked after each whole transaction: its own legs may net out on one account.
            for key in touched:
                if key in self.debits and running[key] < 0:
                    return key
        return None

    def write_params(self, ids: dict[AccountKey, int]) -> dict[str, Any]:
        # Comprehensions, not zip(*rows): that makes one iterator object per row (a thousand
        # for a batch of 500 transfers), and the collector ran over a large heap that much more
        # often (bench/ledger.py 0.84 -> 0.70).
        rows = self.rows
        keys = [r[1] for r in rows]
        account_id = ids.__getitem__
        return {
            # Every array travels as one literal that PostgreSQL parses (``array_literals``):
            # asyncpg's own array encoding checks each element (numerics cost ~8x as much).
            "kinds": texts([tx.kind for tx in self.txs]),
            "keys": texts([tx.business_key for tx in self.txs]),
            "details": texts(
                [
                    orjson.dumps(
                        dict(tx.details), default=_json_default, option=orjson.OPT_NON_STR_KEYS
                    ).decode()
                    if tx.details
                    else None
                    for tx in self.txs
                ]
            ),
            # Every touched account, also one whose net delta is zero: it is locked all the same.
            "a_id": bigints(map(account_id, self.net)),
            "a_delta": numerics(self.net.values()),
            "p_ord": bigints([r[0] for r in rows]),
            "p_account": bigints(map(account_id, keys)),
            "p_asset": texts([k[1] for k in keys]),
            "p_amount": numerics([r[2] for r in rows]),
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

    async def apply_many(
        self, txs: Sequence[LedgerTransaction], *, savepoint: bool = True
    ) -> builtins.list[int]:
        batch = _Batch(txs)
        known = _KNOWN.setdefault(self._c.sync_engine, _KnownAccounts())
        try:
            ids: dict[AccountKey, int] | None = {k: known.ids[k] for k in batch.net}
        except KeyError:
            ids = None
        if ids is not None and known.database is not None and not savepoint:
            return (await self._write_for_rollback(batch, ids, known))[0]
        if ids is not None and known.database is not None:
            try:
                async with self._c.begin_nested():
                    tx_ids, _, _ = await self._write(batch, ids, known.database)
                return tx_ids
            except _StaleAccountIds:
                known.forget()
            except DBAPIError as e:
                error = translate(e)
                if isinstance(error, Conflict):
                    raise error from e
                if not _is_negative_balance(e):
                    # A remembered account that does not exist (its creation was rolled back)
                    # drops its postings and unbalances the write: forget, and start over.
                    known.forget()
                # The slow path names the overdrawn account, or repeats the real error.
        try:
            async with self._c.begin_nested() if savepoint else contextlib.nullcontext():
                rows = (await self._c.execute(_LOCK, batch.lock_params())).all()
                locked = {(r.owner, r.asset, r.bucket): (int(r.id), r.balance) for r in rows}
                if len(locked) != len(batch.net):
                    raise InvariantViolation("ledger accounts missing after creation")
                overdraft = batch.first_overdraft({k: v[1] for k, v in locked.items()})
                if overdraft is not None:
                    raise _insufficient(overdraft)
                ids = {k: v[0] for k, v in locked.items()}
                tx_ids, database, _ = await self._write(batch, ids, None)
        except _StaleAccountIds as e:
            raise InvariantViolation("ledger accounts changed while locked") from e
        except DBAPIError as e:
            if _is_negative_balance(e):  # the check above should have caught it: keep the refusal
                raise InsufficientFunds("a user balance would go negative") from e
            raise translate(e) or e from e
        known.learn(database, ids)
        return tx_ids

    async def post_audited(self, tx: LedgerTransaction, entry: AuditEntry) -> int:
        """``tx`` and its audit entry (``entry.details`` plus ``tx_id``) in one round trip when the
        accounts are known, as ``apply_many(..., savepoint=False)`` (the caller rolls back on any
        error and runs again on a retryable Conflict); the transaction's id."""
        params = {
            "a_actor": entry.actor,
            "a_action": entry.action.value,
            "a_subject": entry.subject,
            "a_request_id": entry.request_id,
            "a_ip": entry.ip,
            "a_details": orjson.dumps(entry.details).decode(),
        }
        written = await self.write_with((tx,), LedgerTail(_AUDIT_CTE, "1 AS audited", params))
        if written is not None:
            return written[0][0]
        tx_id = (await self.apply_many((tx,), savepoint=False))[0]
        await SqlAuditLog(self._c).append(replace(entry, details={"tx_id": tx_id, **entry.details}))
        return tx_id

    async def write_with(
        self, txs: Sequence[LedgerTransaction], tail: LedgerTail
    ) -> tuple[builtins.list[int], Any] | None:
        """``txs`` and ``tail`` in ONE statement (one round trip), for a caller that rolls its whole
        unit of work back on any error, as ``apply_many(..., savepoint=False)``: the transactions'
        ids and the statement's row. None, with nothing written, when an account is not known yet
        (the caller then writes in two steps: ``apply_many``, then its own statement)."""
        batch = _Batch(txs)
        known = _KNOWN.setdefault(self._c.sync_engine, _KnownAccounts())
        try:
            ids = {k: known.ids[k] for k in batch.net}
        except KeyError:
            return None
        if known.database is None:
            return None
        tx_ids, _, row = await self._write_for_rollback(batch, ids, known, tail)
        return tx_ids, row

    async def _write_for_rollback(
        self, batch: _Batch, ids: dict[AccountKey, int], known: _KnownAccounts, tail: LedgerTail | None = None
    ) -> tuple[builtins.list[int], int, Any]:
        """The fast path without its savepoint's two round trips, for a caller that rolls its whole
        unit of work back on any error (what failed cannot be undone here, so every failure raises).
        Stale remembered ids (or any refusal the slow path would have sorted out) are forgotten and
        raised as a retryable Conflict: the caller's retry takes the slow path."""
        assert known.database is not None
        try:
            return await self._write(batch, ids, known.database, tail)
        except _StaleAccountIds:
            known.forget()
            raise Conflict("remembered ledger account ids were stale, retry", retryable=True) from None
        except DBAPIError as e:
            if _is_negative_balance(e):
                raise InsufficientFunds("a user balance would go negative") from e
            error = translate(e)
            if isinstance(error, Conflict):
                raise error from e
            # As on the savepoint path: a remembered account may not exist (its creation was rolled
            # back). Forget, and let the retry take the slow path, which repeats any real error.
            known.forget()
            raise Conflict("a remembered ledger account was refused, retry", retryable=True) from e

    async def _write(
        self, batch: _Batch, ids: dict[AccountKey, int], database: int | None, tail: LedgerTail | None = None
    ) -> tuple[builtins.list[int], int, Any]:
        """Inside a savepoint (or a unit of work that rolls back): raising here undoes the write.
        ``database``: the oid the ids were learnt in, None when they were just read."""
        params = batch.write_params(ids)
        if tail is None:
            row = (await self._c.execute(_WRITE, params)).one()
        else:
            row = (await self._c.execute(_with_tail(tail), {**params, **tail.params})).one()
        if database is not None and row.database != database:
            raise _StaleAccountIds
        key_of = {v: k for k, v in ids.items()}
        try:
            before = {key_of[i]: b for i, b in zip(row.ids or (), row.balances or (), strict=True)}
        except KeyError:
            raise _StaleAccountIds from None
        if len(before) != len(batch.net):
            raise _StaleAccountIds
        tx_ids = [int(i) for i in row.tx_ids]
        if len(tx_ids) != len(batch.txs):
            raise InvariantViolation("ledger write returned an unexpected number of transactions")
        overdraft = batch.first_overdraft(before)
        if overdraft is not None:
            raise _insufficient(overdraft)
        return tx_ids, int(row.database), row

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
