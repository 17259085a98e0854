"""CPU instructions per order placed through POST /frontoffice/api/v3/orders, counted by callgrind.

    python bench/orders_instructions.py [--orders 640] [--warmup 320] [--concurrency 32]

A yardstick for comparing two versions of the order path on a machine whose speed moves (the
HTTP bench's orders/s and CPU per order swing 20 % and more between runs of the same code
here). Seeds a scratch database like bench/orders_http.py (BTCUSDT, 64 funded traders), then
runs itself under ``valgrind --tool=callgrind`` with instrumentation off until the warm-up is
done: the app (``create_app``, its lifespan, the engine runner) serves the orders in process,
called as an ASGI app by rounds of ``--concurrency`` concurrent requests, without sockets or
uvicorn. Only the measured orders are counted; PostgreSQL runs outside valgrind and is not.
Prints user-space instructions per order and the orders' statuses. The same command in two
worktrees compares two versions: a rerun of the same code gives the same count within ~1.5 %.

What it does not see: the kernel (socket and database I/O, page faults), uvicorn's HTTP
parsing, and any time-based work: the caches that expire by the clock (principal 60 s, market
1 s, margin view 1 s) and the security epoch's once-a-second read are lengthened, as under
valgrind's ~50x slowdown they would otherwise come every few dozen orders instead of every
thousand. Needs valgrind (on every machine here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _scratch import scratch_database  # noqa: E402
from orders_http import PATH, order_request, seed  # noqa: E402

TRADERS = 64


def _body(rng: random.Random) -> bytes:
    """The JSON body orders_http sends (its request minus the HTTP head)."""
    return order_request("", "", rng).split(b"\r\n\r\n", 1)[1]


async def _drive(
    url: str, traders: list[tuple[str, str]], warmup: int, orders: int, concurrency: int
) -> None:
    os.environ.update(
        {
            "BOURSE_DATABASE_URL": url,
            "BOURSE_RATE_LIMIT": "off",
            "BOURSE_LOG_LEVEL": "WARNING",
            "BOURSE_BACKGROUND_JOBS": "false",
        }
    )
    import bourse.engine.runner
    import bourse.service.derivatives_base
    import bourse.service.trading
    from bourse.api.app import create_app
    from bourse.bootstrap import build
    from bourse.cli.runtime import load_settings
    from bourse.logs import configure_logging

    settings = load_settings(None)
    configure_logging(settings.log_level, settings.log_json)
    container = build(settings, url)
    app = create_app(container)
    # Clock-driven refreshes: under valgrind a second is a few dozen orders (see the docstring).
    bourse.engine.runner.MARKET_REFRESH_SECONDS = 1e9
    bourse.service.trading.MARKET_TTL_SECONDS = 1e9
    bourse.service.derivatives_base.MAY_HOLD_TTL_SECONDS = 1e9
    container.identity._principals.ttl = 1e9
    container.identity._epoch.interval = 1e9
    statuses: dict[str, int] = {}
    rngs = [random.Random(f"instructions-{w}") for w in range(concurrency)]

    async def one(w: int) -> None:
        token, account = traders[w % len(traders)]
        body = _body(rngs[w])
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 40000 + w),
            "headers": [
                (b"host", b"bench"),
                (b"authorization", f"Bearer {token}".encode()),
                (b"accountid", account.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "state": {},
        }
        given = False
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never goes away
            raise AssertionError

        async def send(message: Any) -> None:
            sent.append(message)

        await app(scope, receive, send)
        status = sent[0]["status"]
        state = json.loads(sent[1]["body"])["order"]["status"] if status == 200 else f"HTTP {status}"
        statuses[state] = statuses.get(state, 0) + 1

    async def rounds(count: int) -> None:
        done = 0
        while done < count:
            n = min(concurrency, count - done)
            await asyncio.gather(*(one(w) for w in range(n)))
            done += n

    async with app.router.lifespan_context(app):
        await rounds(warmup)
        statuses.clear()
        _callgrind("on")
        await rounds(orders)
        _callgrind("off")
    print("statuses " + json.dumps(statuses), flush=True)


def _callgrind(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def _measure(args: argparse.Namespace) -> None:
    with scratch_database("bench_instructions") as url:
        traders = asyncio.run(seed(url, TRADERS))
        with tempfile.TemporaryDirectory(prefix="bourse-instructions-") as tmp:
            work = Path(tmp) / "work.json"
            work.write_text(json.dumps({"url": url, "traders": traders}))
            cmd = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
                sys.executable,
                __file__,
                "--child",
                str(work),
                f"--orders={args.orders}",
                f"--warmup={args.warmup}",
                f"--concurrency={args.concurrency}",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    collected = re.search(r"Collected : (\d+)", done.stderr)
    statuses = re.search(r"^statuses (.*)$", done.stdout, re.M)
    if done.returncode != 0 or collected is None or statuses is None:
        raise SystemExit(f"the run under valgrind failed ({done.returncode}):\n{done.stderr[-3000:]}")
    total = int(collected.group(1))
    print(
        f"orders through POST {PATH} in process, {args.orders} counted after {args.warmup} (rounds of {args.concurrency})"
    )
    print(f"  {total / args.orders:,.0f} instructions per order ({total:,} in all)")
    print(f"  statuses: {statuses.group(1)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=640)
    parser.add_argument("--warmup", type=int, default=320)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--child", metavar="WORK", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = json.loads(Path(args.child).read_text())
        import uvloop

        traders = [(t, a) for t, a in work["traders"]]
        uvloop.run(_drive(work["url"], traders, args.warmup, args.orders, args.concurrency))
    else:
        _measure(args)


if __name__ == "__main__":
    main()
