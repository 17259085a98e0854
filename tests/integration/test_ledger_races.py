"""Concurrent writers on a real PostgreSQL: no lost update, no overdraft, no double effect, no deadlock.

Each coroutine runs its own unit of work, hence its own connection and transaction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from decimal import Decimal

import pytest

from bourse.bootstrap import Container
from bourse.domain.errors import BourseError, Conflict, InsufficientFunds
from bourse.domain.ledger import EXTERNAL, Bucket, LedgerTransaction, account_owner, move
from bourse.domain.values import AssetId

USDT = AssetId("USDT")
AV = Bucket.AVAILABLE
ALICE = account_owner("A")
BOB = account_owner("B")


@pytest.fixture
async def ledger(container: Container) -> Container:
    await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
    return container


async def commit_apply(c: Container, *txs: LedgerTransaction) -> list[int]:
    async with c.uow() as uow:
        ids = await uow.ledger.apply_many(txs)
        await uow.commit()
    return ids


async def outcomes(aws: list[Awaitable[object]]) -> list[object]:
    # A deadlock would surface as a hang (or PostgreSQL's deadlock error): bound the wait.
    return await asyncio.wait_for(asyncio.gather(*aws, return_exceptions=True), timeout=60)


async def bal(c: Container, owner: str, bucket: str = AV) -> Decimal:
    async with c.uow() as uow:
        return await uow.ledger.balance(owner, USDT, bucket)


def unexpected(results: list[object], *allowed: type[BaseException]) -> list[object]:
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]


async def test_100_concurrent_debits_against_37_exactly_37_succeed(ledger: Container) -> None:
    await commit_apply(ledger, move("deposit", USDT, Decimal(37), (EXTERNAL, AV), (ALICE, AV)))
    debit = [
        commit_apply(ledger, move("withdraw", USDT, Decimal(1), (ALICE, AV), (EXTERNAL, AV)))
        for _ in range(100)
    ]
    results = await outcomes(debit)
    assert unexpected(results, InsufficientFunds) == []
    assert sum(1 for r in results if isinstance(r, list)) == 37
    assert sum(1 for r in results if isinstance(r, InsufficientFunds)) == 63
    assert await bal(ledger, ALICE) == 0
    assert await bal(ledger, EXTERNAL) == 0
    assert (await ledger.ledger.check()).clean


async def test_50_concurrent_applies_of_one_business_key_take_effect_once(ledger: Container) -> None:
    same = [
        commit_apply(
            ledger, move("deposit", USDT, Decimal(5), (EXTERNAL, AV), (ALICE, AV), business_key="dep-42")
        )
        for _ in range(50)
    ]
    results = await outcomes(same)
    assert unexpected(results, Conflict) == []
    assert sum(1 for r in results if isinstance(r, list)) == 1
    assert await bal(ledger, ALICE) == 5


async def test_concurrent_post_and_void_of_one_hold_exactly_one_wins(ledger: Container) -> None:
    await commit_apply(ledger, move("deposit", USDT, Decimal(100), (EXTERNAL, AV), (ALICE, AV)))
    async with ledger.uow() as uow:
        holds = [
            await uow.ledger.place_hold(ALICE, USDT, Decimal(10), f"o{i}", "order.hold") for i in range(5)
        ]
        await uow.commit()

    async def settle(hold_id: int, post: bool) -> str:
        async with ledger.uow() as uow:
            if post:
                await uow.ledger.post_hold(hold_id, (BOB, AV), "order.fill")
            else:
                await uow.ledger.void_hold(hold_id, "order.cancel")
            await uow.commit()
        return "posted" if post else "voided"

    attempts = [settle(h.id, post) for h in holds for post in (True, False, True, False)]
    results = await outcomes(attempts)
    assert unexpected(results, Conflict) == []
    won = [r for r in results if isinstance(r, str)]
    assert len(won) == len(holds)
    posted = won.count("posted")
    assert await bal(ledger, ALICE, Bucket.LOCKED) == 0
    assert await bal(ledger, BOB) == 10 * posted
    assert await bal(ledger, ALICE) == 50 + 10 * (len(holds) - posted)
    async with ledger.uow() as uow:
        states = [(await uow.ledger.get_hold(h.id)).status.value for h in holds]  # type: ignore[union-attr]
    assert sorted(states) == sorted(won)


async def test_opposite_transfers_between_two_accounts_never_deadlock(ledger: Container) -> None:
    await commit_apply(
        ledger,
        move("deposit", USDT, Decimal(1000), (EXTERNAL, AV), (ALICE, AV)),
        move("deposit", USDT, Decimal(1000), (EXTERNAL, AV), (BOB, AV)),
    )
    rng = random.Random(7)
    work = []
    for i in range(80):
        a, b = (ALICE, BOB) if i % 2 else (BOB, ALICE)
        amount = Decimal(rng.randint(1, 3000)) / 100
        if i % 4 < 2:
            work.append(commit_apply(ledger, move("transfer", USDT, amount, (a, AV), (b, AV))))
        else:
            # Batches touching both accounts in either order, as a group commit would.
            work.append(
                commit_apply(
                    ledger,
                    move("transfer", USDT, amount, (a, AV), (b, AV)),
                    move("transfer", USDT, amount / 2, (b, AV), (a, AV)),
                )
            )
    results = await outcomes(work)
    assert unexpected(results, InsufficientFunds) == []
    assert not any(isinstance(r, BourseError) and r.details.get("retryable") for r in results)
    assert await bal(ledger, ALICE) + await bal(ledger, BOB) == 2000
    assert await bal(ledger, ALICE) >= 0 and await bal(ledger, BOB) >= 0
    report = await ledger.ledger.check()
    assert report.clean and report.asset_totals == {"USDT": 0}
