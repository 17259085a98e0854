"""Concurrent ext-order requests over HTTP on a real PostgreSQL: one effect per extRequestId,
no overdraft, never more released than staked, a clean ledger afterwards."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from tests.api.wallet.helpers import (
    assert_ledger_clean,
    balances,
    create_asset,
    create_user,
    deposit,
    service_token,
)


def stake(ext_id: str, amount: str) -> dict[str, str]:
    return {
        "extRequestId": ext_id,
        "username": "abc@def",
        "currency": "USDT",
        "amount": amount,
        "bonusAmount": "0",
    }


def settle(ext_id: str, total: str, pnl: str) -> dict[str, str]:
    return {
        "extRequestId": ext_id,
        "username": "abc@def",
        "currency": "USDT",
        "totalOrderAmount": total,
        "totalOrderBonusAmount": "0",
        "pnlAmount": pnl,
        "pnlBonusAmount": "0",
    }


@pytest.fixture
async def setup(container):
    await create_asset(container)
    account_id = await create_user(container)
    return account_id, await service_token(container, "game-a")


async def gather(requests):
    # A deadlock or a lost wake-up would hang: bound the wait.
    return await asyncio.wait_for(asyncio.gather(*requests), timeout=120)


async def money_moves(container) -> int:
    async with container.engine.connect() as conn:
        return int(
            (
                await conn.exec_driver_sql(
                    "SELECT count(*) FROM ledger_transactions WHERE business_key LIKE 'ext:%'"
                )
            ).scalar_one()
        )


async def test_100_identical_creates_debit_once_and_answer_alike(client, container, setup):
    account_id, game = setup
    await deposit(container, account_id, "1000")
    responses = await gather(
        [client.put("/ext-orders/create", json=stake("same", "100"), headers=game) for _ in range(100)]
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert responses[0].json()["code"] == 1
    after = await balances(container, account_id)
    assert after["available"] == Decimal(900) and after["stake"] == Decimal(100)
    assert await money_moves(container) == 1
    await assert_ledger_clean(container)


async def test_100_distinct_creates_against_37_exactly_37_succeed(client, container, setup):
    account_id, game = setup
    await deposit(container, account_id, "92.5")  # 37 x 2.5
    responses = await gather(
        [client.put("/ext-orders/create", json=stake(f"d-{i}", "2.5"), headers=game) for i in range(100)]
    )
    codes = [r.json()["code"] for r in responses]
    assert codes.count(1) == 37
    assert codes.count(11000013) == 63
    assert all(r.status_code == 400 for r in responses if r.json()["code"] == 11000013)
    after = await balances(container, account_id)
    assert after["available"] == 0 and after["stake"] == Decimal("92.5")
    assert await money_moves(container) == 37
    await assert_ledger_clean(container)


async def test_one_id_with_two_bodies_concurrently_applies_one_of_them(client, container, setup):
    account_id, game = setup
    await deposit(container, account_id, "1000")
    requests = [
        client.put("/ext-orders/create", json=stake("contested", "10" if i % 2 else "20"), headers=game)
        for i in range(60)
    ]
    responses = await gather(requests)
    staked = (await balances(container, account_id))["stake"]
    assert staked in (Decimal(10), Decimal(20))
    winner = "10" if staked == 10 else "20"
    for i, r in enumerate(responses):
        sent = "10" if i % 2 else "20"
        assert (r.status_code, r.json()["code"]) == ((200, 1) if sent == winner else (409, 11000007))
    assert await money_moves(container) == 1
    await assert_ledger_clean(container)


async def test_cancels_and_settlements_racing_never_release_more_than_staked(client, container, setup):
    account_id, game = setup
    await deposit(container, account_id, "1000")
    for i in range(3):
        r = await client.put("/ext-orders/create", json=stake(f"s-{i}", "33.5"), headers=game)
        assert r.json()["code"] == 1
    staked = Decimal("100.5")
    rng = random.Random(7)
    amounts = [rng.choice(["7", "12.25", "20", "33.5"]) for _ in range(40)]
    requests = []
    for i, amount in enumerate(amounts):
        if i % 2:
            requests.append(client.put("/ext-orders/cancel", json=stake(f"r-{i}", amount), headers=game))
        else:
            pnl = rng.choice(["-3", "0", "4.75"])
            requests.append(
                client.post("/ext-orders/settlement", json=settle(f"r-{i}", amount, pnl), headers=game)
            )
    responses = await gather(requests)
    released = Decimal(0)
    for amount, r in zip(amounts, responses, strict=True):
        code = r.json()["code"]
        assert code in (1, 11000014), r.text
        if code == 1:
            released += Decimal(amount)
    after = await balances(container, account_id)
    assert released <= staked
    assert after["stake"] == staked - released >= 0
    # Whatever was refused could not have fitted into what was left at the end.
    smallest_refused = min(
        (Decimal(a) for a, r in zip(amounts, responses, strict=True) if r.json()["code"] != 1), default=None
    )
    if smallest_refused is not None:
        assert smallest_refused > after["stake"]
    # Money is conserved: what left the stake went back to the wallet or the house.
    assert after["available"] + after["stake"] + after["house"] == Decimal(1000)
    await assert_ledger_clean(container)
