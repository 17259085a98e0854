"""`bourse merchant ...` and `bourse feeshare run` as an operator runs them: separate processes
on the configured database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.integration.feeshare.support import (
    DAY,
    D,
    make_merchant,
    make_world,
    member,
    next_morning,
    otc_trade,
    pool,
    records,
)


def bourse(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
    env.update(BOURSE_DATABASE_URL=db_url, BOURSE_ENV="dev", BOURSE_LOG_JSON="false")
    return subprocess.run(
        [sys.executable, "-m", "bourse.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(bourse, db_url, *args)


async def test_feeshare_run_for_a_date_is_idempotent(container, clock, db_url):
    world = await make_world(container, clock)
    await make_merchant(container, 1411)
    buyer = await member(container, "m1411-buyer", 1411, btc="2")
    outsider = await member(container, "outsider", None, eth="50")
    await otc_trade(container, world, buyer, outsider, "20")
    next_morning(clock)

    first = await run(db_url, "feeshare", "run", "--date", DAY.isoformat())
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "date": "2023-10-09",
        "collected": 1,
        "calculated": 1,
        "settled": 1,
        "refused": 0,
        "records": 1,
        "settledTotal": 1,
    }
    second = await run(db_url, "feeshare", "run", "--date", DAY.isoformat())
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["settled"] == 0 and json.loads(second.stdout)["settledTotal"] == 1
    assert await pool(container, 1411) == D("0.001")
    assert [r["status"] for r in await records(container)] == [3]

    shown = await run(db_url, "merchant", "show", "1411")
    assert json.loads(shown.stdout)["feePool"] == [{"assetId": "BTC", "balance": "0.001"}]


async def test_feeshare_run_refuses_a_bad_or_unfinished_day(db_url):
    bad = await run(db_url, "feeshare", "run", "--date", "2023-13-01")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
    future = await run(db_url, "feeshare", "run", "--date", "2999-01-01")
    assert future.returncode == 1 and "not over yet" in future.stderr


async def test_merchant_commands(container, clock, db_url):
    await make_world(container, clock)
    await container.identity.create_user("carol", "carol-pass-123")
    created = await run(
        db_url, "merchant", "create", "1411", "--name", "Acme", "--income-rate", "0.2", "--volume-rate", "0.0004",
        "--max-rate", "0.001", "--rate-symbol", "BTC",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert (out["companyId"], out["incomeDivideRate"], out["rateSymbol"]) == (1411, "0.2", "BTC")

    changed = await run(db_url, "merchant", "set-share", "1411", "--income-rate", "0.3")
    assert json.loads(changed.stdout)["incomeDivideRate"] == "0.3"
    assigned = await run(db_url, "merchant", "assign-user", "carol", "1411")
    assert json.loads(assigned.stdout) == {"username": "carol", "companyId": 1411, "assigned": True}
    shown = json.loads((await run(db_url, "merchant", "show", "1411")).stdout)
    assert [u["username"] for u in shown["users"]] == ["carol"]

    # The app key of an existing merchant, as before (the command works for any company id).
    key = await run(db_url, "admin", "create-app-key", "1411")
    assert key.returncode == 0 and set(json.loads(key.stdout)) == {"appKey", "secret"}

    duplicate = await run(
        db_url, "merchant", "create", "1411", "--name", "Again", "--income-rate", "0", "--volume-rate", "0",
        "--max-rate", "0", "--rate-symbol", "BTC",
    )  # fmt: skip
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr
    unknown = await run(db_url, "merchant", "assign-user", "nobody", "1411")
    assert unknown.returncode == 1 and "not found" in unknown.stderr
