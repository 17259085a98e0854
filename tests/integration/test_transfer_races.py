"""Transfers under concurrency, on a real PostgreSQL: duplicates and racing settlements."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from bourse.bootstrap import Container
from bourse.domain.errors import Conflict, IdempotencyConflict
from bourse.domain.identity import Principal, Role
from bourse.domain.ledger import EXTERNAL, account_owner
from bourse.domain.transfers import TransferStatus
from bourse.domain.values import AssetId, UserId
from bourse.service.context import RequestMeta

OPS = Principal.of(UserId(1), "ops", frozenset({Role.ADMIN}))
META = RequestMeta("test", "127.0.0.1")


@pytest.fixture
async def account(container: Container) -> str:
    await container.ledger.create_asset("USDT", "Tether", 2, "Crypto")
    return str((await container.identity.create_user("alice", "alice-pass-123")).account.account_id)


async def _balance(container: Container, owner: str, bucket: str = "available") -> Decimal:
    async with container.uow() as uow:
        return await uow.ledger.balance(owner, AssetId("USDT"), bucket)


async def test_fifty_identical_deposits_credit_once(container: Container, account: str) -> None:
    results = await asyncio.gather(
        *(container.transfers.deposit(OPS, account, "same", "USDT", "12.34", None, META) for _ in range(50))
    )
    assert len({t.transfer_id for t in results}) == 1
    assert all(t.status is TransferStatus.COMPLETED for t in results)
    assert await _balance(container, account_owner(account)) == Decimal("12.34")
    assert await _balance(container, EXTERNAL) == Decimal("-12.34")
    assert len(await container.transfers.list_for_account(OPS, account)) == 1
    assert (await container.ledger.check()).clean


async def test_racing_different_requests_on_one_id_yield_one_transfer(
    container: Container, account: str
) -> None:
    amounts = [f"{n}.00" for n in range(1, 21)]
    results = await asyncio.gather(
        *(container.transfers.deposit(OPS, account, "same", "USDT", a, None, META) for a in amounts),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len({t.transfer_id for t in won}) == 1
    assert all(isinstance(e, IdempotencyConflict) for e in lost)
    assert await _balance(container, account_owner(account)) == won[0].amount


async def test_concurrent_withdrawals_never_overdraw(container: Container, account: str) -> None:
    await container.transfers.deposit(OPS, account, "dep", "USDT", "10", None, META)
    results = await asyncio.gather(
        *(container.transfers.withdraw(OPS, account, f"wd-{n}", "USDT", "3", None, META) for n in range(8)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 3
    owner = account_owner(account)
    assert await _balance(container, owner) == Decimal("1")
    assert await _balance(container, owner, "locked") == Decimal("9")


async def test_confirm_and_cancel_of_one_withdrawal_race_to_exactly_one_winner(
    container: Container, account: str
) -> None:
    await container.transfers.deposit(OPS, account, "dep", "USDT", "100", None, META)
    rounds = 10
    for n in range(rounds):
        wd = await container.transfers.withdraw(OPS, account, f"wd-{n}", "USDT", "5", None, META)
        confirm, cancel = await asyncio.gather(
            container.transfers.confirm(OPS, account, wd.transfer_id, None, META),
            container.transfers.cancel(OPS, account, wd.transfer_id, None, META),
            return_exceptions=True,
        )
        outcomes = [confirm, cancel]
        assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
        winner = next(o for o in outcomes if not isinstance(o, BaseException))
        stored = await container.transfers.get(OPS, wd.transfer_id)
        assert stored.status is winner.status  # type: ignore[union-attr]

    transfers = await container.transfers.list_for_account(OPS, account)
    paid_out = sum(
        t.amount for t in transfers if t.type.value == "Withdrawal" and t.status is TransferStatus.COMPLETED
    )
    owner = account_owner(account)
    assert await _balance(container, owner, "locked") == 0
    assert await _balance(container, owner) == Decimal("100") - paid_out
    assert await _balance(container, EXTERNAL) == -(Decimal("100") - paid_out)
    assert (await container.ledger.check()).clean


async def test_concurrent_repeats_of_one_confirm_pay_out_once(container: Container, account: str) -> None:
    await container.transfers.deposit(OPS, account, "dep", "USDT", "10", None, META)
    wd = await container.transfers.withdraw(OPS, account, "wd", "USDT", "4", None, META)
    results = await asyncio.gather(
        *(container.transfers.confirm(OPS, account, wd.transfer_id, None, META) for _ in range(10))
    )
    assert {r.status for r in results} == {TransferStatus.COMPLETED}
    assert await _balance(container, account_owner(account)) == Decimal("6")
    assert await _balance(container, EXTERNAL) == Decimal("-6")
