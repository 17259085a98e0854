"""The ledger on a real PostgreSQL: what the repository and the database itself guarantee."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bourse.adapters.db.ledger_repos import _constraint, _sqlstate
from bourse.bootstrap import Container, build
from bourse.domain.errors import Conflict, InsufficientFunds, InvalidInput, NotFound
from bourse.domain.ledger import (
    EXTERNAL,
    FEES,
    AssetType,
    Bucket,
    HoldStatus,
    LedgerTransaction,
    Posting,
    account_owner,
    move,
)
from bourse.domain.values import AssetId
from bourse.service.context import RequestMeta
from bourse.service.ledger import post
from bourse.service.ports import UnitOfWork
from tests.conftest import make_settings

USDT = AssetId("USDT")
BTC = AssetId("BTC")
ALICE = account_owner("A1")
BOB = account_owner("B1")
AV = Bucket.AVAILABLE


@pytest.fixture
async def ledger(container: Container) -> Container:
    await container.ledger.create_asset("USDT", "Tether", 6, AssetType.CRYPTO)
    await container.ledger.create_asset("BTC", "Bitcoin", 8, "crypto")
    return container


def deposit(owner: str, amount: str, asset: AssetId = USDT, key: str | None = None) -> LedgerTransaction:
    return move("deposit", asset, Decimal(amount), (EXTERNAL, AV), (owner, AV), business_key=key)


async def apply(c: Container, *txs: LedgerTransaction) -> list[int]:
    async with c.uow() as uow:
        ids = await uow.ledger.apply_many(txs)
        await uow.commit()
    return ids


async def bal(c: Container, owner: str, bucket: str = AV, asset: AssetId = USDT) -> Decimal:
    async with c.uow() as uow:
        return await uow.ledger.balance(owner, asset, bucket)


async def test_apply_moves_balances_and_returns_ids(ledger: Container) -> None:
    [first] = await apply(ledger, deposit(ALICE, "100.5"))
    [second] = await apply(ledger, move("transfer", USDT, Decimal("40.25"), (ALICE, AV), (BOB, AV)))
    assert second > first
    assert await bal(ledger, ALICE) == Decimal("60.25")
    assert await bal(ledger, BOB) == Decimal("40.25")
    assert await bal(ledger, EXTERNAL) == Decimal("-100.5")
    async with ledger.uow() as uow:
        balances = await uow.ledger.balances(ALICE)
    assert [(b.asset, b.bucket, b.amount) for b in balances] == [(USDT, "available", Decimal("60.25"))]


async def test_apply_many_is_ordered_and_multi_asset(ledger: Container) -> None:
    trade = LedgerTransaction(
        "trade",
        (
            Posting(ALICE, USDT, AV, Decimal("-30")),
            Posting(BOB, USDT, AV, Decimal("29.9")),
            Posting(FEES, USDT, AV, Decimal("0.1")),
            Posting(BOB, BTC, AV, Decimal("-0.001")),
            Posting(ALICE, BTC, AV, Decimal("0.001")),
        ),
    )
    ids = await apply(ledger, deposit(ALICE, "50"), deposit(BOB, "1", BTC), trade)
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert await bal(ledger, ALICE) == Decimal("20")
    assert await bal(ledger, ALICE, asset=BTC) == Decimal("0.001")
    assert await bal(ledger, BOB, asset=BTC) == Decimal("0.999")
    assert await bal(ledger, FEES) == Decimal("0.1")
    assert (await ledger.ledger.check()).clean


async def test_amounts_beyond_28_digits_move_and_sum_exactly(ledger: Container) -> None:
    """A token with 18 decimals and a 13-digit balance has 31 significant digits, more than
    Decimal's default context keeps: the ledger's negation, sums and balances must not round."""
    await ledger.ledger.create_asset("SHIB", "Shiba", 18, AssetType.CRYPTO)
    shib = AssetId("SHIB")
    amount = Decimal("1000000000000.123456789012345678")
    await apply(ledger, deposit(ALICE, "3000000000000.000000000000000001", shib))
    await apply(
        ledger,
        move("transfer", shib, amount, (ALICE, AV), (BOB, AV)),
        move("transfer", shib, amount, (ALICE, AV), (BOB, AV)),
    )
    assert await bal(ledger, BOB, asset=shib) == Decimal("2000000000000.246913578024691356")
    assert await bal(ledger, ALICE, asset=shib) == Decimal("999999999999.753086421975308645")
    assert (await ledger.ledger.check()).clean


async def test_insufficient_funds_names_the_account_and_applies_nothing(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "10"))
    async with ledger.uow() as uow:
        await uow.ledger.apply(deposit(BOB, "5"))
        with pytest.raises(InsufficientFunds) as e:
            await uow.ledger.apply_many(
                [
                    deposit(BOB, "1", key="k1"),
                    move("transfer", USDT, Decimal("10.01"), (ALICE, AV), (BOB, AV)),
                ]
            )
        assert e.value.details == {"owner": ALICE, "asset": "USDT", "bucket": "available"}
        # The unit of work is still usable and keeps what was applied before the refusal.
        await uow.ledger.apply(deposit(BOB, "2", key="k1"))
        await uow.commit()
    assert await bal(ledger, ALICE) == Decimal("10")
    assert await bal(ledger, BOB) == Decimal("7")


async def test_an_overdraft_inside_a_batch_is_refused_even_if_refilled_later(ledger: Container) -> None:
    out = move("withdraw", USDT, Decimal("5"), (ALICE, AV), (EXTERNAL, AV))
    with pytest.raises(InsufficientFunds):
        await apply(ledger, out, deposit(ALICE, "5"))
    assert await bal(ledger, ALICE) == 0
    async with ledger.uow() as uow:
        assert await uow.ledger.balances(ALICE) == []


async def test_duplicate_business_key_is_a_conflict(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "1", key="dep-1"))
    with pytest.raises(Conflict):
        await apply(ledger, deposit(ALICE, "1", key="dep-1"))
    with pytest.raises(Conflict):
        await apply(ledger, deposit(BOB, "1", key="dep-2"), deposit(BOB, "1", key="dep-2"))
    assert await bal(ledger, ALICE) == 1
    assert await bal(ledger, BOB) == 0


async def test_unknown_asset_is_not_found(ledger: Container) -> None:
    with pytest.raises(NotFound):
        await apply(ledger, deposit(ALICE, "1", AssetId("NOPE")))


async def _raw(c: Container, sql: str) -> None:
    async with c.engine.connect() as conn:
        await conn.execute(text(sql))
        await conn.commit()


@pytest.mark.ledger_tampered  # a raw posting bypasses the balances on purpose
async def test_database_refuses_an_unbalanced_transaction(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "10"))
    with pytest.raises(DBAPIError, match="does not balance"):
        await _raw(
            ledger,
            "WITH t AS (INSERT INTO ledger_transactions (kind) VALUES ('forged') RETURNING id) "
            "INSERT INTO ledger_postings (tx_id, account_id, asset, amount) "
            "SELECT t.id, la.id, la.asset, 5 FROM t, ledger_accounts la WHERE la.owner = 'acct:A1'",
        )
    # A balanced statement passes the trigger: the check is per (tx, asset), not a blanket refusal.
    await _raw(
        ledger,
        "WITH t AS (INSERT INTO ledger_transactions (kind) VALUES ('raw') RETURNING id) "
        "INSERT INTO ledger_postings (tx_id, account_id, asset, amount) "
        "SELECT t.id, la.id, la.asset, CASE WHEN la.owner = 'acct:A1' THEN 5 ELSE -5 END "
        "FROM t, ledger_accounts la",
    )


_A1_USDT = "(SELECT id FROM ledger_accounts WHERE owner = 'acct:A1' AND asset = 'USDT')"
_EXTERNAL_USDT = "(SELECT id FROM ledger_accounts WHERE owner = 'sys:external' AND asset = 'USDT')"


@pytest.mark.parametrize(
    ("postings", "constraint"),
    [
        # a transaction that does not exist
        (
            f"(SELECT max(id) + 1000 FROM ledger_transactions), {_A1_USDT}, 'USDT', 5), "
            f"((SELECT max(id) + 1000 FROM ledger_transactions), {_EXTERNAL_USDT}, 'USDT', -5",
            "fk_ledger_postings_tx_id_ledger_transactions",
        ),
        # an account that does not exist
        (
            f"(SELECT max(id) FROM t), (SELECT max(id) + 1000 FROM ledger_accounts), 'USDT', 5), "
            f"((SELECT max(id) FROM t), {_EXTERNAL_USDT}, 'USDT', -5",
            "fk_ledger_postings_account_asset",
        ),
        # an existing account, in another asset than its own (balanced in BTC)
        (
            f"(SELECT max(id) FROM t), {_A1_USDT}, 'BTC', 5), "
            f"((SELECT max(id) FROM t), {_EXTERNAL_USDT}, 'BTC', -5",
            "fk_ledger_postings_account_asset",
        ),
    ],
)
async def test_database_refuses_a_posting_naming_a_missing_transaction_or_account(
    ledger: Container, postings: str, constraint: str
) -> None:
    """Checked per statement by the postings trigger (ADR 0011), as the foreign keys did per row:
    same SQLSTATE, same constraint name, nothing written."""
    await apply(ledger, deposit(ALICE, "10"))
    with pytest.raises(DBAPIError) as refused:
        await _raw(
            ledger,
            "WITH t AS (INSERT INTO ledger_transactions (kind) VALUES ('forged') RETURNING id) "
            f"INSERT INTO ledger_postings (tx_id, account_id, asset, amount) VALUES ({postings})",
        )
    assert (_sqlstate(refused.value), _constraint(refused.value)) == ("23503", constraint)
    report = await ledger.ledger.check()
    assert report.clean and report.postings == 2


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM ledger_accounts WHERE owner = 'acct:A1'",
        "TRUNCATE ledger_accounts CASCADE",
        "UPDATE ledger_accounts SET asset = 'BTC' WHERE owner = 'acct:A1'",
        "UPDATE ledger_accounts SET id = id + 1000 WHERE owner = 'acct:A1'",
    ],
)
async def test_ledger_accounts_are_never_removed_or_renamed(ledger: Container, sql: str) -> None:
    """What keeps a posting's checked reference true for good (no foreign key holds it)."""
    await apply(ledger, deposit(ALICE, "10"))
    with pytest.raises(DBAPIError, match="never removed or renamed"):
        await _raw(ledger, sql)
    assert await bal(ledger, ALICE) == 10
    assert (await ledger.ledger.check()).clean


@pytest.mark.ledger_tampered
async def test_database_refuses_a_negative_user_balance(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "10"))
    with pytest.raises(DBAPIError, match="non_negative"):
        await _raw(ledger, "UPDATE ledger_accounts SET balance = -1 WHERE owner = 'acct:A1'")
    # System owners may go negative.
    await _raw(ledger, "UPDATE ledger_accounts SET balance = balance - 1 WHERE owner = 'sys:external'")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_postings SET amount = amount * 2",
        "DELETE FROM ledger_postings",
        "TRUNCATE ledger_postings",
        "UPDATE ledger_transactions SET kind = 'x'",
        "DELETE FROM ledger_transactions",
    ],
)
async def test_postings_and_transactions_are_append_only(ledger: Container, sql: str) -> None:
    await apply(ledger, deposit(ALICE, "10"))
    with pytest.raises(DBAPIError, match="append-only"):
        await _raw(ledger, sql)
    assert (await ledger.ledger.check()).postings == 2


async def test_hold_is_posted_exactly_once(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "100"))
    async with ledger.uow() as uow:
        hold = await uow.ledger.place_hold(ALICE, USDT, Decimal("30"), "order-1", "order.hold")
        await uow.commit()
    assert hold.status is HoldStatus.PENDING and hold.amount == 30 and hold.reference == "order-1"
    assert (await bal(ledger, ALICE), await bal(ledger, ALICE, Bucket.LOCKED)) == (70, 30)
    async with ledger.uow() as uow:
        await uow.ledger.post_hold(hold.id, (BOB, AV), "order.fill")
        await uow.commit()
    assert (await bal(ledger, ALICE, Bucket.LOCKED), await bal(ledger, BOB)) == (0, 30)
    async with ledger.uow() as uow:
        with pytest.raises(Conflict):
            await uow.ledger.post_hold(hold.id, (BOB, AV), "order.fill")
        with pytest.raises(Conflict):
            await uow.ledger.void_hold(hold.id, "order.cancel")
        got = await uow.ledger.get_hold(hold.id)
    assert got is not None and got.status is HoldStatus.POSTED
    assert await bal(ledger, BOB) == 30 and await bal(ledger, ALICE) == 70


async def test_hold_is_voided_exactly_once(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "100"))
    async with ledger.uow() as uow:
        hold = await uow.ledger.place_hold(ALICE, USDT, Decimal("30"), "order-2", "order.hold")
        await uow.ledger.void_hold(hold.id, "order.cancel")
        with pytest.raises(Conflict):
            await uow.ledger.void_hold(hold.id, "order.cancel")
        with pytest.raises(NotFound):
            await uow.ledger.void_hold(hold.id + 1000, "order.cancel")
        await uow.commit()
    assert (await bal(ledger, ALICE), await bal(ledger, ALICE, Bucket.LOCKED)) == (100, 0)


async def test_a_hold_needs_available_funds(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "10"))
    async with ledger.uow() as uow:
        with pytest.raises(InsufficientFunds):
            await uow.ledger.place_hold(ALICE, USDT, Decimal("10.5"), "order-3", "order.hold")
        await uow.commit()
    assert (await bal(ledger, ALICE), await bal(ledger, ALICE, Bucket.LOCKED)) == (10, 0)


@pytest.mark.ledger_tampered
async def test_check_is_clean_after_activity_and_names_a_tampered_account(ledger: Container) -> None:
    await apply(ledger, deposit(ALICE, "100"), deposit(BOB, "3", BTC))
    async with ledger.uow() as uow:
        hold = await uow.ledger.place_hold(ALICE, USDT, Decimal("30"), "o", "order.hold")
        await uow.ledger.post_hold(hold.id, (BOB, AV), "order.fill")
        await uow.commit()
    report = await ledger.ledger.check()
    assert report.clean
    assert report.transactions == 4 and report.postings == 8
    assert report.asset_totals == {"BTC": 0, "USDT": 0}

    await _raw(
        ledger, "UPDATE ledger_accounts SET balance = balance + 1 WHERE owner = 'acct:B1' AND asset = 'USDT'"
    )
    report = await ledger.ledger.check()
    assert not report.clean
    [m] = report.mismatches
    assert (m.owner, m.asset, m.bucket, m.stored, m.recomputed) == (BOB, "USDT", "available", 31, 30)


async def test_assets_create_update_list(ledger: Container) -> None:
    with pytest.raises(Conflict):
        await ledger.ledger.create_asset("USDT", "again", 2, "Fiat")
    updated = await ledger.ledger.update_asset("USDT", name="Tether USD")
    assert (updated.name, updated.scale, updated.type) == ("Tether USD", 6, AssetType.CRYPTO)
    assert [a.id for a in await ledger.ledger.list_assets()] == ["BTC", "USDT"]
    assert (await ledger.ledger.get_asset("USDT")).name == "Tether USD"
    with pytest.raises(NotFound):
        await ledger.ledger.get_asset("EUR")
    with pytest.raises(NotFound):
        await ledger.ledger.update_asset("EUR", name="Euro")
    for bad in ({"scale": 19}, {"scale": -1}, {"type": "Stock"}, {"asset_id": "bad id"}, {"name": " "}):
        args = {"asset_id": "EUR", "name": "Euro", "scale": 2, "type": "Fiat"} | bad
        with pytest.raises(InvalidInput):
            await ledger.ledger.create_asset(**args)  # type: ignore[arg-type]
    assert (await ledger.ledger.create_asset("EUR", "Euro", 2, "fiat")).type is AssetType.FIAT


async def test_an_account_created_by_a_rolled_back_unit_of_work_is_created_again(ledger: Container) -> None:
    # The repository remembers account ids across units of work; one whose creation was
    # rolled back must not be trusted.
    await apply(ledger, deposit(BOB, "1"))
    async with ledger.uow() as uow:
        await uow.ledger.apply(move("transfer", USDT, Decimal("1"), (BOB, AV), (ALICE, AV)))
        await uow.ledger.apply(deposit(ALICE, "5"))
    await apply(ledger, deposit(ALICE, "7"))
    await apply(ledger, deposit(ALICE, "1"))
    await apply(ledger, move("transfer", USDT, Decimal("1"), (BOB, AV), (ALICE, AV)))
    assert (await bal(ledger, ALICE), await bal(ledger, BOB)) == (9, 0)
    assert (await ledger.ledger.check()).clean


async def test_post_applies_and_audits_the_movement_in_one_unit_of_work(ledger: Container) -> None:
    async with ledger.uow() as uow:
        tx_id = await post(
            uow,
            deposit(ALICE, "3", key="d-9"),
            actor="op",
            subject="account:A1",
            meta=RequestMeta("req-1", "10.0.0.1"),
        )
        await uow.commit()
    async with ledger.uow() as uow:
        with pytest.raises(Conflict):
            await post(uow, deposit(ALICE, "3", key="d-9"), actor="op", subject="account:A1")
        await uow.commit()
    async with ledger.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT actor, action, subject, request_id, ip, details FROM audit_log WHERE action = 'money.moved'"
                )
            )
        ).all()
    [(actor, action, subject, request_id, ip, details)] = rows
    assert (actor, action, subject, request_id, ip) == (
        "op",
        "money.moved",
        "account:A1",
        "req-1",
        "10.0.0.1",
    )
    assert details["tx_id"] == tx_id and details["kind"] == "deposit" and details["business_key"] == "d-9"
    assert {p["owner"]: p["amount"] for p in details["postings"]} == {EXTERNAL: "-3", ALICE: "3"}


# --- stateful: random sequences of deposits, withdrawals, transfers and holds -------------------

AMOUNTS = st.integers(min_value=1, max_value=5000).map(lambda cents: Decimal(cents) / 100)
USERS = st.sampled_from(["A", "B"])
KEYS = st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"]))
_runs = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    """The ledger against a model of two users' available and locked USDT.

    Every step is one unit of work on the real database, driven from this synchronous
    machine through a dedicated event loop. Each example uses fresh owners and business
    keys (the ledger is append-only, so it cannot be wiped between examples)."""

    loop: asyncio.AbstractEventLoop
    container: Container
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.run = next(_runs)
        self.model: dict[tuple[str, str], Decimal] = {
            (u, b): Decimal(0) for u in ("A", "B") for b in (Bucket.AVAILABLE, Bucket.LOCKED)
        }
        self.used_keys: set[str] = set()
        self.hold_state: dict[int, str] = {}
        self.hold_owner: dict[int, tuple[str, Decimal]] = {}

    def owner(self, user: str) -> str:
        return account_owner(f"h{self.run}-{user}")

    def key(self, key: str | None) -> str | None:
        return None if key is None else f"h{self.run}-{key}"

    def run_uow(self, work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        async def step() -> Any:
            async with self.container.uow() as uow:
                result = await work(uow)
                await uow.commit()
                return result

        return self.loop.run_until_complete(step())

    def apply_expecting(self, txs: list[LedgerTransaction], effects: list[list[tuple[str, Decimal]]]) -> None:
        """Apply ``txs`` as one batch (``effects[i]``: what txs[i] does to the users' available
        balances); the model decides whether it must be refused, and why."""
        running = dict(self.model)
        overdraft = False
        for tx_effects in effects:
            for user, delta in tx_effects:
                running[(user, Bucket.AVAILABLE)] += delta
            overdraft = overdraft or any(v < 0 for v in running.values())
        keys = [tx.business_key for tx in txs if tx.business_key]
        duplicate = len(set(keys)) < len(keys) or any(k in self.used_keys for k in keys)
        expected: tuple[type[BaseException], ...] = ()
        if overdraft:
            expected += (InsufficientFunds,)
        if duplicate:
            expected += (Conflict,)
        if expected:
            with pytest.raises(expected):
                self.run_uow(lambda uow: uow.ledger.apply_many(txs))
            return
        self.run_uow(lambda uow: uow.ledger.apply_many(txs))
        self.model = running
        self.used_keys.update(keys)

    def deposit_tx(self, user: str, amount: Decimal, key: str | None) -> LedgerTransaction:
        return move(
            "deposit", USDT, amount, (EXTERNAL, AV), (self.owner(user), AV), business_key=self.key(key)
        )

    @rule(user=USERS, amount=AMOUNTS, key=KEYS)
    def deposit(self, user: str, amount: Decimal, key: str | None) -> None:
        self.apply_expecting([self.deposit_tx(user, amount, key)], [[(user, amount)]])

    @rule(user=USERS, amount=AMOUNTS)
    def withdraw(self, user: str, amount: Decimal) -> None:
        tx = move("withdraw", USDT, amount, (self.owner(user), AV), (EXTERNAL, AV))
        self.apply_expecting([tx], [[(user, -amount)]])

    @rule(src=USERS, amount=AMOUNTS, key=KEYS)
    def transfer(self, src: str, amount: Decimal, key: str | None) -> None:
        dst = "B" if src == "A" else "A"
        tx = move(
            "transfer", USDT, amount, (self.owner(src), AV), (self.owner(dst), AV), business_key=self.key(key)
        )
        self.apply_expecting([tx], [[(src, -amount), (dst, amount)]])

    @rule(user=USERS, out=AMOUNTS, back=AMOUNTS, key=KEYS)
    def withdraw_then_deposit_batch(self, user: str, out: Decimal, back: Decimal, key: str | None) -> None:
        # In a batch the withdrawal comes first: a later deposit cannot cover it.
        withdraw = move("withdraw", USDT, out, (self.owner(user), AV), (EXTERNAL, AV))
        self.apply_expecting([withdraw, self.deposit_tx(user, back, key)], [[(user, -out)], [(user, back)]])

    @rule(target=holds, user=USERS, amount=AMOUNTS)
    def place_hold(self, user: str, amount: Decimal) -> int:
        if self.model[(user, AV)] < amount:
            with pytest.raises(InsufficientFunds):
                self.run_uow(lambda uow: uow.ledger.place_hold(self.owner(user), USDT, amount, "r", "hold"))
            return -1
        hold = self.run_uow(lambda uow: uow.ledger.place_hold(self.owner(user), USDT, amount, "r", "hold"))
        self.model[(user, AV)] -= amount
        self.model[(user, Bucket.LOCKED)] += amount
        self.hold_state[hold.id] = "pending"
        self.hold_owner[hold.id] = (user, amount)
        return int(hold.id)

    @rule(hold=holds, dst=USERS, post=st.booleans())
    def settle_hold(self, hold: int, dst: str, post: bool) -> None:
        if hold < 0:
            return
        user, amount = self.hold_owner[hold]

        async def settle(uow: UnitOfWork) -> int:
            if post:
                return await uow.ledger.post_hold(hold, (self.owner(dst), AV), "fill")
            return await uow.ledger.void_hold(hold, "cancel")

        if self.hold_state[hold] != "pending":
            with pytest.raises(Conflict):
                self.run_uow(settle)
            return
        self.run_uow(settle)
        self.hold_state[hold] = "posted" if post else "voided"
        self.model[(user, Bucket.LOCKED)] -= amount
        self.model[(dst if post else user, AV)] += amount

    @invariant()
    def balances_match_the_model(self) -> None:
        async def read(uow: UnitOfWork) -> dict[tuple[str, str], Decimal]:
            return {
                (u, b): await uow.ledger.balance(self.owner(u), USDT, b)
                for u in ("A", "B")
                for b in (Bucket.AVAILABLE, Bucket.LOCKED)
            }

        assert self.run_uow(read) == self.model
        assert all(v >= 0 for v in self.model.values())

    def teardown(self) -> None:
        report = self.loop.run_until_complete(self.container.ledger.check())
        assert report.clean, report
        assert report.asset_totals.get("USDT", Decimal(0)) == 0

        async def keys(uow: Any) -> dict[str, int]:
            rows = await uow.connection.execute(
                text(
                    "SELECT business_key, count(*) FROM ledger_transactions "
                    "WHERE business_key LIKE :p GROUP BY business_key"
                ),
                {"p": f"h{self.run}-%"},
            )
            return {r[0]: r[1] for r in rows}

        assert self.run_uow(keys) == dict.fromkeys(self.used_keys, 1)


def test_ledger_state_machine(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    container = build(make_settings(), db_url)
    try:
        loop.run_until_complete(container.ledger.create_asset("USDT", "Tether", 6, "Crypto"))
        LedgerMachine.loop = loop
        LedgerMachine.container = container
        LedgerMachine.TestCase.settings = settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        LedgerMachine.TestCase().runTest()
    finally:
        loop.run_until_complete(container.aclose())
        loop.close()


def _remembered(c: Container) -> Any:
    from bourse.adapters.db.ledger_repos import _KNOWN

    return _KNOWN[c.engine.sync_engine]


async def test_without_savepoint_a_write_applies_and_a_refusal_is_undone_by_the_rollback(
    ledger: Container,
) -> None:
    await apply(ledger, deposit(ALICE, "10"), deposit(BOB, "1"))  # the slow path remembers both ids
    async with ledger.uow() as uow:
        ids = await uow.ledger.apply_many(
            [move("transfer", USDT, Decimal("4.5"), (ALICE, AV), (BOB, AV))], savepoint=False
        )
        await uow.commit()
    assert len(ids) == 1
    assert (await bal(ledger, ALICE), await bal(ledger, BOB)) == (Decimal("5.5"), Decimal("5.5"))
    async with ledger.uow() as uow:
        with pytest.raises(InsufficientFunds):
            await uow.ledger.apply_many(
                [move("transfer", USDT, Decimal("5.51"), (ALICE, AV), (BOB, AV))], savepoint=False
            )
    # Leaving the unit of work without commit rolled the write back.
    assert (await bal(ledger, ALICE), await bal(ledger, BOB)) == (Decimal("5.5"), Decimal("5.5"))
    assert (await ledger.ledger.check()).clean


async def test_without_savepoint_stale_remembered_ids_ask_for_a_retry_that_succeeds(
    ledger: Container,
) -> None:
    await apply(ledger, deposit(ALICE, "10"), deposit(BOB, "1"))
    known = _remembered(ledger)
    known.database = (known.database or 0) + 1  # as if the database had been recreated
    transfer = move("transfer", USDT, Decimal("1"), (ALICE, AV), (BOB, AV))
    async with ledger.uow() as uow:
        with pytest.raises(Conflict) as e:
            await uow.ledger.apply_many([transfer], savepoint=False)
    assert e.value.details == {"retryable": True}
    async with ledger.uow() as uow:  # the retry: ids forgotten, the slow path reads them again
        await uow.ledger.apply_many([transfer], savepoint=False)
        await uow.commit()
    assert (await bal(ledger, ALICE), await bal(ledger, BOB)) == (Decimal("9"), Decimal("2"))
