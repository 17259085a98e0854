"""Ledger throughput: balanced transfers per second through the ledger repository, against a
set-based SQL reference doing the same writes on the same database in the same run.

    python bench/ledger.py [--transfers 40000] [--batch 500] [--users 2000] [--rounds 3]

Both sides write the same rows: per transfer one ledger transaction and two postings, and
per batch one balance update per touched account, committed once per batch (the group
commit of a matching engine). The ledger side goes through units of work and
``LedgerRepository.apply_many`` (account locking in a fixed order, the overdraft check,
a savepoint); the reference is one hand-written statement per batch on a raw asyncpg
connection with the account ids resolved up front. The two sides alternate in slices of
four batches, so the growing tables and a busy machine slow both alike. Uses BOURSE_DATABASE_URL if set (creating a scratch
database there), else the embedded server under var/bench-pg.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _scratch import plain, scratch_database  # noqa: E402

from bourse.bootstrap import build  # noqa: E402
from bourse.config import Settings  # noqa: E402
from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, move  # noqa: E402
from bourse.domain.values import AssetId  # noqa: E402

USDT = AssetId("USDT")
AV = Bucket.AVAILABLE

REFERENCE_SQL = """
WITH src AS MATERIALIZED (
    SELECT nextval('ledger_transactions_id_seq'::regclass) AS id, ord FROM generate_series(1, $1::int) AS ord
),
tx AS (INSERT INTO ledger_transactions (id, kind) SELECT id, 'transfer' FROM src),
ins AS (
    INSERT INTO ledger_postings (tx_id, account_id, asset, amount)
    SELECT src.id, p.account_id, 'USDT', p.amount
      FROM unnest($2::bigint[], $3::bigint[], $4::numeric[]) AS p(ord, account_id, amount)
      JOIN src ON src.ord = p.ord
),
upd AS (
    UPDATE ledger_accounts la SET balance = la.balance + d.delta
      FROM unnest($5::bigint[], $6::numeric[]) AS d(id, delta) WHERE la.id = d.id
)
SELECT count(*) FROM src
"""


def make_transfers(n: int, users: int, seed: int) -> list[tuple[int, int, Decimal]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.sample(range(users), 2)
        out.append((a, b, Decimal(rng.randint(1, 100_000)) / 100))
    return out


def owner(i: int) -> str:
    return account_owner(f"bench-{i}")


async def run_ledger(container: object, transfers: list[tuple[int, int, Decimal]], batch: int) -> float:
    txs = [move("transfer", USDT, amt, (owner(a), AV), (owner(b), AV)) for a, b, amt in transfers]
    start = time.perf_counter()
    for i in range(0, len(txs), batch):
        async with container.uow() as uow:  # type: ignore[attr-defined]
            await uow.ledger.apply_many(txs[i : i + batch])
            await uow.commit()
    return len(txs) / (time.perf_counter() - start)


async def run_reference(
    conn: asyncpg.Connection, ids: dict[str, int], transfers: list[tuple[int, int, Decimal]], batch: int
) -> float:
    start = time.perf_counter()
    for i in range(0, len(transfers), batch):
        chunk = transfers[i : i + batch]
        p_ord, p_acc, p_amt = [], [], []
        net: dict[int, Decimal] = {}
        for n, (a, b, amt) in enumerate(chunk, 1):
            src, dst = ids[owner(a)], ids[owner(b)]
            p_ord += [n, n]
            p_acc += [src, dst]
            p_amt += [-amt, amt]
            net[src] = net.get(src, Decimal(0)) - amt
            net[dst] = net.get(dst, Decimal(0)) + amt
        accounts = sorted(net)
        async with conn.transaction():
            await conn.fetchval(
                REFERENCE_SQL, len(chunk), p_ord, p_acc, p_amt, accounts, [net[k] for k in accounts]
            )
    return len(transfers) / (time.perf_counter() - start)


async def bench(url: str, args: argparse.Namespace) -> None:
    settings = Settings(env="dev", rate_limit="off", log_json=False, db_pool_size=2)
    container = build(settings, url)
    conn = await asyncpg.connect(plain(url))
    try:
        await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
        fund = [
            move("deposit", USDT, Decimal(10) ** 12, (EXTERNAL, AV), (owner(i), AV))
            for i in range(args.users)
        ]
        async with container.uow() as uow:
            await uow.ledger.apply_many(fund)
            await uow.commit()
        rows = await conn.fetch("SELECT owner, id FROM ledger_accounts WHERE owner LIKE 'acct:bench-%'")
        ids = {r["owner"]: r["id"] for r in rows}
        # Warm up both paths (prepared statements, caches) outside the measurement.
        warm = make_transfers(args.batch * 2, args.users, seed=99)
        await run_ledger(container, warm, args.batch)
        await run_reference(conn, ids, warm, args.batch)

        # The machine may be shared: alternate short slices of both sides so that load
        # changes hit both alike; report the totals and the median ratio of paired slices.
        ledger_time = reference_time = 0.0
        total = 0
        paired: list[float] = []
        for r in range(args.rounds):
            transfers = make_transfers(args.transfers, args.users, seed=r)
            slice_ = args.batch * 4
            for n, i in enumerate(range(0, len(transfers), slice_)):
                part = transfers[i : i + slice_]
                rates: dict[str, float] = {}
                for side in ("ledger", "reference") if n % 2 == 0 else ("reference", "ledger"):
                    if side == "ledger":
                        rates[side] = await run_ledger(container, part, args.batch)
                    else:
                        rates[side] = await run_reference(conn, ids, part, args.batch)
                ledger_time += len(part) / rates["ledger"]
                reference_time += len(part) / rates["reference"]
                paired.append(rates["ledger"] / rates["reference"])
                total += len(part)
            print(
                f"round {r + 1}: ledger {total / ledger_time:,.0f}/s  reference {total / reference_time:,.0f}/s"
            )

        report = await container.ledger.check()
        assert report.clean, report
        ledger_rate, reference_rate = total / ledger_time, total / reference_time
        print(
            f"transfers: {args.transfers} per round x {args.rounds} rounds, batch {args.batch}, "
            f"{args.users} accounts; ledger check clean ({report.transactions} transactions)"
        )
        print(f"ledger (units of work + apply_many): {ledger_rate:,.0f} transfers/s")
        print(f"set-based SQL reference:             {reference_rate:,.0f} transfers/s")
        print(
            f"ratio ledger/reference: {ledger_rate / reference_rate:.2f}x overall, "
            f"{statistics.median(paired):.2f}x median of {len(paired)} paired slices (goal >= 0.80x)"
        )
    finally:
        await conn.close()
        await container.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=20_000, help="transfers per round")
    parser.add_argument("--batch", type=int, default=500, help="transfers per batch (one commit)")
    parser.add_argument("--users", type=int, default=2_000, help="accounts transfers pick from")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with scratch_database("bourse_bench") as url:
        asyncio.run(bench(url, args))


if __name__ == "__main__":
    main()
