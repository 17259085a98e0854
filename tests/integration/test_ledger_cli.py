"""`bourse ledger check` as an operator runs it: a separate process on the configured database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from sqlalchemy import text

from bourse.bootstrap import Container
from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, move
from bourse.domain.values import AssetId


def ledger_check(db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
    env.update(BOURSE_DATABASE_URL=db_url, BOURSE_ENV="dev", BOURSE_LOG_JSON="false")
    return subprocess.run(
        [sys.executable, "-m", "bourse.cli.main", "ledger", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.ledger_tampered
async def test_ledger_check_exit_code_and_names_the_tampered_account(
    container: Container, db_url: str
) -> None:
    await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
    alice = account_owner("A1")
    async with container.uow() as uow:
        await uow.ledger.apply(
            move(
                "deposit",
                AssetId("USDT"),
                Decimal("12.5"),
                (EXTERNAL, "available"),
                (alice, Bucket.AVAILABLE),
            )
        )
        await uow.ledger.place_hold(alice, AssetId("USDT"), Decimal("2.5"), "o1", "order.hold")
        await uow.commit()

    clean = await asyncio.to_thread(ledger_check, db_url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 transactions" in clean.stdout and "consistent" in clean.stdout

    async with container.engine.connect() as conn:
        await conn.execute(
            text("UPDATE ledger_accounts SET balance = 7 WHERE owner = 'acct:A1' AND bucket = 'locked'")
        )
        await conn.commit()
    tampered = await asyncio.to_thread(ledger_check, db_url)
    assert tampered.returncode != 0
    assert "owner=acct:A1 asset=USDT bucket=locked stored=7 recomputed=2.5" in tampered.stdout
    assert "NOT consistent" in tampered.stdout
