"""`bourse admin set-margin-ratio` as an operator runs it (its own process on the configured database)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal

from tests.integration.trading.support import make_market


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


async def test_set_margin_ratio(container, db_url):
    await make_market(container)  # creates BTC and USDT
    done = await asyncio.to_thread(bourse, db_url, "admin", "set-margin-ratio", "BTC", "0.9")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"assetId": "BTC", "marginRatio": "0.9"}
    assert (await container.derivatives.margin_ratios()) == {"BTC": Decimal("0.9")}

    refused = await asyncio.to_thread(bourse, db_url, "admin", "set-margin-ratio", "BTC", "1.5")
    assert refused.returncode != 0 and "ratio" in refused.stderr
    unknown = await asyncio.to_thread(bourse, db_url, "admin", "set-margin-ratio", "NOPE", "0.5")
    assert unknown.returncode != 0 and "NOPE" in unknown.stderr
