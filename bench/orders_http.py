"""Limit orders per second through POST /frontoffice/api/v3/orders, end to end, on one uvicorn worker.

    python bench/orders_http.py [--orders 20000] [--concurrency 64] [--traders 64] [--seconds 20]

Seeds a scratch database (BTC, USDT, the market BTCUSDT, ``--traders`` funded traders),
starts ``bourse serve`` on 127.0.0.1 (rate limit off, log level WARNING, no background
jobs) and drives it at ``--concurrency`` keep-alive connections, each connection a
trader placing limit orders a few ticks around 100 on either side (so about half of
them trade and the book stays small): HTTP, authentication, the accountId check, the
engine runner, group commit, the answer. Then, in the same run, the same load against a
minimal FastAPI + pydantic endpoint served by uvicorn the same way (one worker, no access
log): POST a small pydantic body, get JSON back. Prints orders/s, p50/p99 latency and
server CPU per order for both, and their ratio; checks every order was answered 200 and
the ledger check passes afterwards.

The load generator is a few lines of HTTP/1.1 over asyncio streams rather than httpx, so
that on a small machine the client takes as little CPU from the server as possible. Each
phase stops after ``--orders`` requests or ``--seconds``, whichever comes first; the first
5 % are warm-up and not timed. Uses BOURSE_DATABASE_URL if set (creating a scratch database
there), else the embedded server under var/bench-pg. Loopback only. ``--profile FILE`` samples
the bourse server with py-spy (``pip install py-spy``) during its phase, as collapsed stacks.

Measured (2 CPUs shared with other work, ``--seconds 15``, 64 connections; the two code
versions run alternately, two runs each, so both saw the same machine):

    version                       orders/s  p50 ms  p99 ms  server CPU/order  PG CPU/order  minimal   ratio
    before (8772be9)              360-375   154     361-368  1.95-2.06 ms     0.22-0.25 ms  6380-7190  0.05-0.06
    after (principal cache, ...)  1024      50-52   197-221  0.77-0.80 ms     0.19 ms       6410-7050  0.15-0.16

What moved it, in the order it landed (each step measured alone on a noisier machine): the
bearer token's resolution kept for at most 2 s (``service/principal_cache.py``, ADR 0003;
it was a JWT decode and a query per request, and 64 concurrent queries also overflowed the
request pool into new connections): 436 -> 841 orders/s, 1.89 -> 0.89 ms CPU/order; the
order routers first among the brokerage routes (FastAPI scans included routers in order);
fee terms of all due accounts in one query per batch instead of one each; ``FeeTerms.fee``
without building a validated CommissionRule per fill; the principal read from the request's
state dict instead of a raising ``getattr``. Still far from the goal (3,000/s, p99 < 50 ms):
the framework's own work per request (middleware, routing over ~140 routes, dependencies)
and the runner's tick (~0.23 ms CPU/order, 7 round trips per batch) share one event loop,
and a batch waits for PostgreSQL on the same two cores.

Round 2 (same method; the machine was shared with other sessions' test runs, load average
1.6-2.9 for the first rows and 3.5-8 later, so only same-run ratios and CPU per order
compare across rows; ``--orders 40000`` from the third row on, as 20,000 ended the bourse
phase in under 10 s):

    version                              orders/s   p50 ms  p99 ms   server CPU/order  minimal    ratio
    before (a921929)                     850-1118   46-56   257-394  0.72-0.79 ms      5620-7340  0.15
    hot path, enum lookup, lazy events   2060-2210  26-28   193-198  0.32 ms           7190-7460  0.29-0.30
    + gc.freeze at startup               2020-2070  30-31   45-51    0.33 ms           6960-7000  0.30
    + httptools (one pair, load 2.1/4.0) 2180->1910 28->26  51->76   0.28->0.24 ms     6790->7310 0.32->0.26

What moved it: POST /v3/orders served by ``api/common/hot_path.py`` inside the edge
middleware, without FastAPI's route scan and dependency solving (same model, auth,
permission, endpoint and error rendering; refusals before the endpoint go to FastAPI);
``_enum`` in order parsing was a generator walk over the enum class per field (4 % of
CPU); the book depth and the orders' v3 shapes were built for every batch although
nobody subscribed. The p99 was full garbage collections walking every object startup
left (modules, app, books): 165-175 ms pauses, six in 15 s; ``gc.freeze()`` once the app
has started leaves ~10-18 ms ones. httptools halves the minimal endpoint's CPU per request
(0.13 -> 0.07 ms) and takes ~0.04 ms off ours, so the ratio falls while orders/s rise on
a quiet machine. The engine's ledger write without a savepoint (two round trips less per
batch; SQLAlchemy's savepoint machinery was ~2 % of samples) was kept on that mechanism:
its alternating runs fell on load average 3.5-6 and moved by less than their noise.

Where it stands: bourse's server CPU is ~0.24-0.33 ms per order and PostgreSQL's ~0.16,
so the two cores (shared with the load generator and, here, other work) cap it near
2,000-2,500 orders/s; 3,000/s needs less CPU per order on both sides. What is left per
order, by profile: the runner ~1/3 (asyncpg encoding the batch's Decimal arrays ~9 %,
SQLAlchemy execution ~5 %, the tick's matching and settlement ~12 %), uvicorn's HTTP
~1/4 with h11, the hot path and its endpoint ~1/6.

Round 3 (before = 5eaa022, after = 11be0f2; six alternating pairs, ``--seconds 15 --orders 40000``,
load average 1.4-3.8 from other sessions' work, which moved single runs by +-20 %: compare the
pairs' ratios and the medians, not single rows):

    version           orders/s (median)  p50 ms  p99 ms  server CPU/order    PG CPU/order  ratio (median)
    before (5eaa022)  1480-2086 (1729)   30-43   51-69   0.270-0.396 (0.33)  0.185-0.238   0.153-0.178 (0.160)
    after (11be0f2)   1444-2130 (1836)   29-42   47-78   0.246-0.346 (0.305) 0.128-0.231   0.155-0.206 (0.186)

The after run's ratio was higher in 5 of the 6 pairs and its CPU per order lower in 5 (equal in
one). What changed, each measured alone by a micro-benchmark (the bench's own noise is larger than
any one of them): the engine batch's and the ledger write's Decimal arrays go to PostgreSQL as one
``numeric[]`` literal of ``str(Decimal)`` texts instead of asyncpg's binary numerics (asyncpg: 0.85
us a value client side, of which its per-element ABC checks of an array ~0.2; the literal 0.09,
and PostgreSQL's own time per value halved; the values, scales included, are the same);
``token_owner``'s select built once instead of per token resolution (0.12-0.24 ms each, every
trader's token every 1-2 s: 2.2 % of server CPU); ``iso_millis`` through ``isoformat`` (3.2 ->
1.8 us, twice per answer). One ``--profile`` run of each (py-spy, share of server samples,
before -> after): the batch write 7.2 -> 3.5 %, the ledger write 7.7 -> 5.8 %, asyncpg's
statement execution 8.8 -> 3.1 %, token_owner 2.5 -> 0.6 %, the runner's whole tick 29 -> 24 %.
The goal (3,000/s, p99 < 50 ms) is still not reached: per order the
server spends ~0.25-0.35 ms and PostgreSQL ~0.2 on two shared cores. Left by the last profile:
the event loop's own C work (sockets, httptools, asyncpg's protocol) ~1/3 of samples, the runner
~1/4 (Tick.place 8 %, the two batch statements ~11 % with asyncpg's encoding of the remaining
text, bigint and timestamp arrays), the middleware stack ~4 %, the token refresh ~3 % (JWT
decode 1.4 %), the endpoint's parsing and answer ~5 %.

Round 4 (session 3: the pipelined group commit, ADR 0010; before = 236430e, after = f4e9f52, two
alternating pairs, ``--seconds 15 --orders 60000``, load average ~1):

    version              orders/s     p50 ms     p99 ms     server CPU/order  PG CPU/order  minimal       ratio
    before (236430e)     1850-1870    33.0-33.8  57.7-84.5  0.299-0.313 ms    0.217-0.219   10392-10675   0.17-0.18
    after (f4e9f52)      2480-2619    23.8-25.1  42.7-43.0  0.286-0.308 ms    0.177-0.194   10524-11136   0.24

Why: timed inside the runner, the serial cycle was ~14 ms per ~32 orders, the server's
Python work (~9 ms: HTTP, tick, the answers) and PostgreSQL's (~6 ms) one after the other,
neither core more than ~60 % busy. Now batch N+1 is matched while N writes and commits, and a
batch writes in one statement (ledger transactions and the rest; ``write_batch_and_ledger``)
that goes out as soon as N's statement has returned and waits in PostgreSQL for N's commit.
What did not work, measured on the way: matching the next batch as soon as the loop was
free (batches fell from ~32 to ~17-22 orders, CPU per order rose 10-35 % on both sides, orders/s
-7 % to +5 %): the runner now lets the next batch grow to the size of the one writing first;
two statements per batch with the ledger write sent ahead (as fast as one statement sent after
the batch ahead committed, ~+20 %). The goal (3,000/s, p99 < 50 ms) is still not reached: the
chain per batch is now its statement (~4-5 ms of PostgreSQL for ~32 orders) plus the event loop's
delay in taking each answer (~2-4 ms: the loop is ~75 % busy at 2,600/s with ~0.28 ms of Python
per order). What is left: less Python per order (HTTP parsing and the answer are ~half of it),
or the batch's write and commit on a connection driven outside the event loop's queue.

Then young collections every 20,000 net allocations instead of 700 (``api/app.py``,
``YOUNG_GC_THRESHOLD``), eight runs against four (alternating, load ~1): orders/s median
~2,790 (2,547-2,908) against ~2,710 (2,613-2,749), p99 33-37 ms against 40-45, server CPU per
order mostly 0.25-0.26 against 0.27-0.29 ms. The best run was 2,908 orders/s, p99 32.5 ms; the
goal (3,000/s) is still not met on this machine. Pipelining deeper (3 backs) changed nothing:
64 connections keep two batches of ~32 in flight.

Round 6 (session 4, a slower machine: the same two cores now run the minimal FastAPI endpoint at
4,060-6,020 req/s against 10,400-12,000, the matching bench's liquibook at 431k ops/s against
879k, a ``SELECT 1`` round trip in 0.36 ms; up to 25-30 % of the CPU stolen by the host at
times). Before = 78c3fbf, after = the ledger's references checked per statement (ADR 0011) and
JWT claims verified once per token; three alternating pairs, ``--seconds 12 --orders 60000``:

    version          orders/s     p50 ms     p99 ms     server CPU/order  PG CPU/order   ratio
    before (78c3fbf) 1152-1289    49.4-55.5  70.9-80.8  0.596-0.682 ms    0.368-0.418    0.21-0.28
    after            1282-1371    46.9-49.6  65.1-71.2  0.587-0.621 ms    0.306-0.331    0.24-0.29

Why: ``auto_explain`` with ``log_triggers`` on a run against the machine's PostgreSQL put the
foreign-key triggers at the top of the batch statement: ~5.3 ledger postings per order, each
checked against its transaction and its account by a query and a row lock, plus the orders',
trades' and executions' own keys. Dropping keys in a scratch copy (not shipped) moved PostgreSQL's
CPU per order from 0.42-0.48 ms to 0.30-0.37 (the ledger's two) and 0.26-0.33 (all of them);
dropping nine secondary indexes instead moved nothing measurable. The ledger's two keys are now
checked by its postings trigger, set-based, once per statement (ADR 0011); the other tables keep
theirs. At ~1,300 orders/s the server (0.6 ms), PostgreSQL (0.32 ms) and the load generator
(0.07 ms) need ~1.3 of the two cores: 3,000/s here would need less than half of today's CPU per
order on both sides, so the goal is not reachable on this machine by tuning alone.

Round 7 (session 5; a machine between the two: the minimal endpoint at 6,260-10,360 req/s, and
its speed moved within runs: this load generator's own CPU per request swung 0.042-0.062 ms for
the same code, so server and PostgreSQL CPU per order are compared divided by it). Where the
server's time goes, by cutting the request short at each layer (a throwaway ``BENCH_CUT`` hack,
not shipped; CPU per order): uvicorn and a bare ASGI answer 0.026 ms; + FastAPI's own outer
middlewares 0.031-0.036; + the edge, the hot path's parsing, the principal and the model
0.072-0.090; + the endpoint up to ``TradingService.place`` 0.088-0.115; the whole order
0.39-0.49. Three quarters of it is the order's own work past HTTP: the runner (matching,
settlement, ledger transactions, encoding the batch statement, commit) and the answer. The
runner alone, in process at 64 callers: 0.15-0.25 ms. Not a per-batch cost: at 128 connections
(batches of ~63) the server spent 0.361 ms an order, at 64 (~32) 0.367. Measured on the way:
asyncpg's per-element checks of array parameters (~92 ``ABCMeta.__instancecheck__`` an order,
~12-18 us); SQLAlchemy's execute over raw asyncpg (313 against 146 us of CPU for a statement
with 45 array parameters, 166 against 62 for ``SELECT 1``); granian instead of uvicorn (the
minimal endpoint at 6,300-7,000 req/s and 0.18-0.20 ms, against 10,000-10,400 and 0.10: worse
on two cores); ``plan_cache_mode = force_generic_plan`` (PostgreSQL 0.27 against 0.22 ms: worse;
the batch statement already runs a generic plan, 12 plans in 1,337 calls).

PostgreSQL, ``auto_explain`` on one 64-order batch statement (13.0 ms with timing): postings
(342 rows) 2.3 ms and their balance and reference trigger 1.0, orders (64) 2.1, executions (76)
1.7, ledger transactions (102) 0.8, ledger account balances (134) 0.9, trades (38) 0.7, and the
orders', trades' and executions' five foreign keys 2.0. Those are now checked per statement
(ADR 0012). Six alternating pairs, ``--seconds 12 --orders 60000``, before = 6dd79b6:

    version          orders/s    p99 ms     server CPU/order  PG CPU/order   PG / load generator
    before (6dd79b6) 1598-2298   45.3-72.1  0.334-0.497 ms    0.184-0.255    4.08-4.28 (4.16)
    after            1740-2473   40.7-63.3  0.312-0.456 ms    0.165-0.219    3.78-3.96 (3.86)

PostgreSQL's CPU per order fell ~7 % (lower in every pair); the server's did not move beyond the
noise (server / load generator 7.40-8.15 before, 7.43-7.91 after; ``Order.copy``, 13 -> 1.7 us by
micro-benchmark, is below it). Dropping the nine secondary indexes as well would take
PostgreSQL from ~0.19 to ~0.11-0.13 ms an order, but they serve the history server's sorts and
filters (migration 0010), so they stay. The goal is still not met: 3,000/s here needs the server
below ~0.28 ms an order (one core, ~85 % busy), a quarter less than today, and nothing left in
its profile is above a few per cent.

Then, in the same session, the server's share (before = 6dd79b6 again; three alternating pairs,
the last ones on a slower spell of the machine, this load generator at 0.050-0.059 ms a request):
the edge's request id from a per-process prefix and a counter instead of ``uuid4`` (a read of the
OS's random source each time) and its metric children kept instead of ``labels()`` per request
(the edge alone, in a loop: 19 -> 8 us); orjson for the hot routes' body and answer
(``api/common/responses.py``; ``json.dumps`` of an order's answer ~6-12 us, orjson < 1); every
array of the batch statement as one PostgreSQL array literal built by C-level ``map``/``join``
(``adapters/db/array_literals.py``: asyncpg checked each of ~60 elements an order against
``collections.abc`` before encoding it); ``Order.copy`` by a positional call.

    version          orders/s    p99 ms      server CPU/order  PG CPU/order  server / load gen.  PG / load gen.  ratio
    before (6dd79b6) 1503-1719   70.6-136.6  0.382-0.519 ms    0.209-0.256   7.64-8.80 (8.22)    4.18-4.34       0.17-0.22
    after            1833-1925   54.2-85.0   0.385-0.426 ms    0.213-0.233   7.14-7.61 (7.34)    3.95-4.09       0.22-0.25

Server CPU per order -11 %, PostgreSQL's -5 % (both divided by the load generator's, which the
machine's speed moves the same way), orders/s +8 to +22 % within each pair. An earlier set of
three pairs with the edge, orjson and the first literals (before the C-level builders), on a
faster spell: 2,033-2,422 orders/s, p99 44.9-49.6 ms (every run under 50), server / load
generator 6.93-7.35 against 7.69-8.00. The goal (3,000/s, p99 < 50 ms) is still not met here.

Round 9 (session 6; the machine at its noisiest: within one set of pairs the minimal endpoint ran
at 3,970-7,810 req/s and this load generator's CPU per request moved 0.054-0.084 ms). Compared by
instructions as well: ``bench/orders_instructions.py`` counts the user-space instructions per order
of the same path in process under callgrind (no sockets or uvicorn; a rerun of the same code within
~1.5 %). What changed: FastAPI 0.165's own OpenTelemetry asked the three OpenTelemetry providers,
through ``os.environ``, whether they were configured on every request (``telemetry=`` off now; the
edge keeps the metrics); the batch's order columns come from one tuple per order transposed by
``zip`` (a 35-key dict per order and 35 comprehensions before), the ledger write's details
through orjson (its rows by ``zip`` too, undone: with an iterator per row, a thousand per batch
there, bench/ledger.py's collector ran far more often, 0.84 -> 0.70x); ``SqlUnitOfWork`` no longer calls ``begin()`` on entry and after
each commit (SQLAlchemy 2 begins with the first statement): three greenlet rounds less per batch,
each of which also mapped and unmapped a 16 KB frame stack (strace: about one mmap/munmap pair per
order). The ledger's sums became exact in any decimal context (``EXACT.add``), ~1 % back. Then
``iso_millis`` cached (two per answer, 2 us each; a batch's orders share one timestamp):
1,337-1,350k -> 1,302-1,320k instructions per order (a cache of ``format_decimal``: nothing).

    version           instructions/order   server / load generator (3 pairs)  orders/s     p99 ms
    before (2a60697)  1,443-1,450k         6.96-7.63 (7.30)                    1082-2041    50-121
    after (bf85532)   1,337-1,350k         6.67-6.91 (6.82)                    946-1743     59-189

Instructions per order -7 % (-9 % with the iso_millis cache), server CPU per order against the load generator's -6.6 %; orders/s
and p99 moved with the machine (its minimal endpoint halved within the set). Measured on the way
(strace on the loaded server): per order about one read and one writev (uvloop already sends a
response's head and body in one writev: a transport coalescing them, tried, changed nothing),
and one getpid (CPython 3.11's ``get_running_loop`` checks the pid; negligible). The goal is
still not met: on this machine 3,000/s would need about half of today's server CPU per order.

Round 10 (session 7; the minimal endpoint at 6,017-7,451 req/s). Kept token resolutions no longer
expire every 2 s: they are dropped when the database's security epoch moves (migration 0024,
``service/security_epoch.py``, read once a second). Before, each of the 64 traders' tokens was
looked up again every 1-2 s, ~40 units of work a second. Three alternating pairs against b42fd3a:
server CPU per order over the load generator's 6.65 -> 6.48 (mean; -2.5 %, about this machine's
noise; the arithmetic says ~4 %), 1,576-2,128 against 1,600-1,712 orders/s, p99 48-63 against
56-63 ms. Instructions per order unchanged (1,307k; the meter never saw the refreshes). Where the
server's time goes now (perf, cpu-clock, whole machine): 81 % of the server process is libpython
(``_PyEval_EvalFrameDefault`` alone 26 %), 9 % the kernel; the Python profile is flat. All the CPU
an order costs, every process counted, is 0.75-0.87 ms here, so both cores fully busy would carry
~2,300-2,700 orders/s: 3,000/s on this machine needs less work per order on both sides, not
better use of the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _http import cpu_seconds, free_port, latency_summary, read_response, start_bourse, wait_ready  # noqa: E402
from _scratch import scratch_database  # noqa: E402

from bourse.adapters.crypto import Argon2PasswordHasher  # noqa: E402
from bourse.bootstrap import build  # noqa: E402
from bourse.config import Settings  # noqa: E402
from bourse.domain.identity import Principal, Role  # noqa: E402
from bourse.domain.ledger import EXTERNAL, Bucket, account_owner, move  # noqa: E402
from bourse.domain.values import AssetId, UserId  # noqa: E402
from bourse.service.context import RequestMeta  # noqa: E402

PATH = "/frontoffice/api/v3/orders"
ADMIN = Principal.of(UserId(0), "bench", frozenset({Role.ADMIN}))


def postgres_cpu_seconds() -> float:
    """CPU of every process named postgres on this machine (the database's share of the work)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


async def seed(url: str, traders: int) -> list[tuple[str, str]]:
    """The market and ``traders`` funded traders: [(bearer token, account id)]."""
    container = build(
        Settings(env="dev", rate_limit="off"), url, hasher=Argon2PasswordHasher(memory_kib=1024, time_cost=1)
    )
    try:
        await container.ledger.create_asset("BTC", "Bitcoin", 8, "Crypto")
        await container.ledger.create_asset("USDT", "Tether", 6, "Crypto")
        await container.markets.create(
            ADMIN,
            {
                "baseAssetId": "BTC",
                "quoteAssetId": "USDT",
                "priceScale": 2,
                "amountScale": 4,
                "priceDeviation": "0.5",
            },
            RequestMeta(),
        )
        out: list[tuple[str, str]] = []
        for i in range(traders):
            created = await container.identity.create_user(f"bench-trader-{i}", "bench-pass-1")
            account = created.account.account_id
            async with container.uow() as uow:
                await uow.ledger.apply_many(
                    [
                        move(
                            "bench.deposit",
                            AssetId(asset),
                            Decimal(amount),
                            (EXTERNAL, Bucket.AVAILABLE),
                            (account_owner(account), Bucket.AVAILABLE),
                        )
                        for asset, amount in (("BTC", "1000000"), ("USDT", "1000000000"))
                    ]
                )
                await uow.commit()
            issued = await container.identity.login(f"bench-trader-{i}", "bench-pass-1", None, RequestMeta())
            out.append((issued.access_token, account))
        return out
    finally:
        await container.aclose()


def start_profiler(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``) on the server: collapsed stacks, idle frames left out."""
    py_spy = Path(sys.executable).with_name("py-spy")
    cmd = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "250",
        "--nonblocking",
        "--output",
        out,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_baseline(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve-baseline", str(port)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class BaselineOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    marketId: str
    orderType: str
    side: str
    requestedPrice: str | None = None
    requestedAmount: str
    timeInForce: str | None = None


class BaselineBody(BaseModel):
    order: BaselineOrder


def serve_baseline(port: int) -> None:
    """The peer: FastAPI + pydantic, one uvicorn worker, the same options ``bourse serve`` uses."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post(PATH)
    async def place(body: BaselineBody) -> dict[str, Any]:
        o = body.order
        return {
            "order": {
                "marketId": o.marketId,
                "orderType": o.orderType,
                "side": o.side,
                "status": "Placed",
                "requestedAmount": o.requestedAmount,
                "requestedPrice": o.requestedPrice,
            }
        }

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, proxy_headers=False)


def order_request(token: str, account: str, rng: random.Random) -> bytes:
    side = "Buy" if rng.random() < 0.5 else "Sell"
    # Buys a little below 100 and sells a little above rest; the overlap trades.
    offset = rng.randint(-6, 4) if side == "Buy" else rng.randint(-4, 6)
    body = json.dumps(
        {
            "order": {
                "marketId": "BTCUSDT",
                "orderType": "Limit",
                "side": side,
                "requestedPrice": f"{Decimal(10000 + offset) / 100:.2f}",
                "requestedAmount": f"0.0{rng.randint(1, 9)}",
                "timeInForce": "Gtc",
            }
        }
    ).encode()
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\naccountId: {account}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def phase(
    port: int,
    traders: list[tuple[str, str]],
    count: int,
    concurrency: int,
    seconds: float,
    tag: str,
    pid: int,
) -> dict[str, Any]:
    next_id = iter(range(count))
    warmup = max(1, count // 20)
    latencies: list[float] = []
    codes: dict[int, int] = {}
    started: list[float] = []
    cpu_at_start: list[float] = []
    db_cpu_at_start: list[float] = []
    client_cpu_at_start: list[float] = []
    stop_at = time.monotonic() + seconds
    bodies: dict[str, int] = {}

    async def worker(w: int) -> None:
        token, account = traders[w % len(traders)]
        rng = random.Random(f"{tag}-{w}")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in next_id:
                if time.monotonic() > stop_at:
                    return
                if i == warmup:
                    started.append(time.perf_counter())
                    cpu_at_start.append(cpu_seconds(pid))
                    db_cpu_at_start.append(postgres_cpu_seconds())
                    client_cpu_at_start.append(time.process_time())
                t0 = time.perf_counter()
                writer.write(order_request(token, account, rng))
                status, body = await read_response(reader)
                elapsed = time.perf_counter() - t0
                codes[status] = codes.get(status, 0) + 1
                if status == 200:
                    state = json.loads(body)["order"]["status"]
                    bodies[state] = bodies.get(state, 0) + 1
                if i >= warmup:
                    latencies.append(elapsed)
        finally:
            writer.close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - started[0] if started else float("nan")
    cpu = cpu_seconds(pid) - cpu_at_start[0] if cpu_at_start else float("nan")
    db_cpu = postgres_cpu_seconds() - db_cpu_at_start[0] if db_cpu_at_start else float("nan")
    client_cpu = time.process_time() - client_cpu_at_start[0] if client_cpu_at_start else float("nan")
    return {
        "tag": tag,
        "sent": sum(codes.values()),
        "codes": codes,
        "statuses": bodies,
        **latency_summary(latencies, wall, cpu=cpu, db_cpu=db_cpu, client_cpu=client_cpu),
    }


async def ledger_clean(url: str) -> bool:
    container = build(Settings(env="dev", rate_limit="off"), url)
    try:
        return (await container.ledger.check()).clean
    finally:
        await container.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=20000, help="requests per phase (at most)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--traders", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20, help="time cap per phase")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample the bourse server with py-spy during its phase; collapsed stacks go to FILE",
    )
    args = parser.parse_args()

    with scratch_database("bench_orders") as url:
        asyncio.run(bench(url, args))


async def bench(url: str, args: argparse.Namespace) -> None:
    servers: list[subprocess.Popen[bytes]] = []
    try:
        traders = await seed(url, args.traders)
        with tempfile.TemporaryDirectory(prefix="bourse-bench-") as data_dir:
            port = free_port()
            bourse = start_bourse(url, port, data_dir)
            servers.append(bourse)
            await wait_ready(port, bourse)
            profiler = start_profiler(bourse.pid, args.profile) if args.profile else None
            ours = await phase(
                port, traders, args.orders, args.concurrency, args.seconds, "bourse", bourse.pid
            )
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
            bourse.send_signal(signal.SIGINT)
            bourse.wait(timeout=30)
            port = free_port()
            peer = start_baseline(port)
            servers.append(peer)
            await wait_ready(port, peer)
            theirs = await phase(
                port, traders, args.orders, args.concurrency, args.seconds, "fastapi", peer.pid
            )
            peer.send_signal(signal.SIGINT)
            peer.wait(timeout=30)
        clean = await ledger_clean(url)
        print(
            f"limit orders over HTTP: 1 uvicorn worker, {args.concurrency} connections, {args.traders} traders, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        for r in (ours, theirs):
            print(
                f"  {r['tag']:>8}: {r['rate']:8.1f} orders/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                f"server CPU {r['cpu_ms']:5.3f} ms/order  ({r['timed']} timed of {r['sent']} sent; "
                f"HTTP {r['codes']})"
            )
            print(
                f"  {'':>8}  CPU per order elsewhere: PostgreSQL {r['db_cpu_ms']:5.3f} ms, "
                f"this load generator {r['client_cpu_ms']:5.3f} ms"
            )
        print(f"  bourse / minimal FastAPI endpoint: {ours['rate'] / theirs['rate']:.2f}")
        print(f"  order statuses: {ours['statuses']}")
        ok = set(ours["codes"]) == {200} and set(theirs["codes"]) == {200}
        print(f"  check: every request answered 200: {ok}; ledger check clean: {clean}")
        if not (ok and clean):
            raise SystemExit(1)
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-baseline":
        serve_baseline(int(sys.argv[2]))
    else:
        main()
