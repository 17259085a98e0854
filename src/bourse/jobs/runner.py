"""Background jobs inside the API process: a small asyncio loop per job.

Started by the app's lifespan when ``Settings.background_jobs`` is on (the
default); the test client never runs the lifespan, and tests that want a job
start one themselves. Jobs: transfer callback delivery; the market data consumer; the price
alert consumer; reports (the scheduler, the worker, the expiry of report files); OTC fee sharing;
derivative pricing, funding rates and the circuit breaker; derivatives (resting orders, triggers,
margin, funding and swap payments); hedge orders at external venues.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from bourse.bootstrap import Container

log = structlog.get_logger("bourse.jobs")

CALLBACK_POLL_SECONDS = 0.5
MARKET_FILES_POLL_SECONDS = 1.0
REPORT_POLL_SECONDS = 1.0
REPORT_SCHEDULE_SECONDS = 5.0
REPORT_EXPIRY_SECONDS = 300.0
REPORT_MAIL_POLL_SECONDS = 5.0
FEESHARE_POLL_SECONDS = 60.0
FUNDING_RATES_POLL_SECONDS = 10.0
CIRCUIT_BREAKER_POLL_SECONDS = 1.0
DERIVATIVE_ORDERS_POLL_SECONDS = 1.0
DERIVATIVE_TRIGGERS_POLL_SECONDS = 1.0
DERIVATIVE_MARGIN_POLL_SECONDS = 1.0
FUNDING_PAYMENTS_POLL_SECONDS = 5.0
SWAP_PAYMENTS_POLL_SECONDS = 30.0
EXTERNAL_ORDERS_POLL_SECONDS = 1.0


class PollingJob:
    """Runs ``step`` every ``interval`` seconds; at once again while ``step`` reports a full batch of work.

    An error in one step is logged and the loop goes on: a job must outlive a database restart.
    """

    def __init__(self, name: str, step: Callable[[], Awaitable[bool]], interval: float) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"job:{self.name}")

    async def _run(self) -> None:
        while True:
            try:
                busy = await self._step()
            except Exception:
                log.exception("background job step failed", job=self.name)
                busy = False
            if not busy:
                await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ServiceTask:
    """Runs a long-lived coroutine (a bus consumer) as a task; restarted after a crash, after ``backoff``."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]], backoff: float = 1.0) -> None:
        self.name = name
        self._run_once = run
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"job:{self.name}")

    async def _run(self) -> None:
        while True:
            try:
                await self._run_once()
            except Exception:
                log.exception("background task failed; restarting", job=self.name)
            await asyncio.sleep(self._backoff)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class BackgroundJobs:
    def __init__(self, jobs: list[PollingJob | ServiceTask]) -> None:
        self.jobs = jobs

    def start(self) -> BackgroundJobs:
        for job in self.jobs:
            job.start()
        return self

    async def aclose(self) -> None:
        for job in self.jobs:
            await job.stop()


def callback_delivery_job(container: Container, interval: float = CALLBACK_POLL_SECONDS) -> PollingJob:
    batch = container.callbacks.batch_size

    async def step() -> bool:
        return await container.callbacks.deliver_due() >= batch

    return PollingJob("callbacks", step, interval)


def marketdata_job(container: Container) -> ServiceTask:
    """Candles, ticker and depth from the trades and book events (service/marketdata.py)."""
    return ServiceTask("marketdata", container.marketdata.run)


def price_alert_job(container: Container) -> ServiceTask:
    """Fires price alerts from the trades events (service/price_alerts.py)."""
    return ServiceTask("price-alerts", container.price_alerts.run)


def report_jobs(
    container: Container,
    *,
    poll: float = REPORT_POLL_SECONDS,
    schedule: float = REPORT_SCHEDULE_SECONDS,
    expiry: float = REPORT_EXPIRY_SECONDS,
    mail: float = REPORT_MAIL_POLL_SECONDS,
) -> list[PollingJob]:
    """Reports (service/reports.py): due templates become reports (each due time once, whichever
    process claims it), pending reports are run one at a time, expired report files are deleted,
    report mails due for a (re)try are sent."""
    reports = container.reports

    async def scheduler() -> bool:
        return await reports.schedule_due() > 0

    async def expiry_step() -> bool:
        await reports.expire_files()
        return False

    async def mail_step() -> bool:
        return await reports.deliver_mail() >= reports.mail_batch

    return [
        PollingJob("report-schedule", scheduler, schedule),
        PollingJob("reports", reports.work_once, poll),
        PollingJob("report-expiry", expiry_step, expiry),
        PollingJob("report-mail", mail_step, mail),
    ]


def market_files_job(container: Container, interval: float = MARKET_FILES_POLL_SECONDS) -> PollingJob:
    """Market file imports and exports (service/market_files.py), one file at a time."""
    return PollingJob("market-files", container.market_files.process_next, interval)


def feeshare_job(container: Container, interval: float = FEESHARE_POLL_SECONDS) -> PollingJob:
    """OTC fee sharing (service/feeshare.py): shortly after each UTC midnight, the day before is
    collected, calculated and settled (and any missed day of the last week)."""
    return PollingJob("feeshare", container.feeshare.run_due, interval)


def pricing_jobs(
    container: Container,
    *,
    tick: float | None = None,
    funding: float = FUNDING_RATES_POLL_SECONDS,
    breaker: float = CIRCUIT_BREAKER_POLL_SECONDS,
) -> list[PollingJob]:
    """Derivative pricing (service/pricing.py): read the price sources and sample marks (halting a
    market whose source is stale, reopening it when fresh), store due funding rates, and the
    circuit breaker over every market's recent trades."""
    pricing = container.pricing

    async def tick_step() -> bool:
        await pricing.tick()
        return False

    async def funding_step() -> bool:
        await pricing.run_funding_rates()
        return False

    async def breaker_step() -> bool:
        await pricing.check_circuit_breakers()
        return False

    return [
        PollingJob(
            "pricing", tick_step, tick if tick is not None else container.settings.pricing_tick_seconds
        ),
        PollingJob("funding-rates", funding_step, funding),
        PollingJob("circuit-breaker", breaker_step, breaker),
    ]


def derivatives_jobs(
    container: Container,
    *,
    orders: float = DERIVATIVE_ORDERS_POLL_SECONDS,
    triggers: float = DERIVATIVE_TRIGGERS_POLL_SECONDS,
    margin: float = DERIVATIVE_MARGIN_POLL_SECONDS,
    funding: float = FUNDING_PAYMENTS_POLL_SECONDS,
    swaps: float = SWAP_PAYMENTS_POLL_SECONDS,
) -> list[PollingJob]:
    """Derivatives (service/derivatives.py), each pass over everything due: resting limits, stops
    and Gtd expiry of Dealer orders; take profit, stop loss and trailing stops on the marks; margin
    calls and stop-outs; funding payments of the stored funding rates and the daily swaps, each
    moment paid once (a stored cursor per market) and caught up after downtime (at once again
    while a pass still paid something)."""
    derivatives = container.derivatives

    async def orders_step() -> bool:
        await derivatives.run_dealer_orders()
        return False

    async def triggers_step() -> bool:
        await derivatives.run_triggers()
        return False

    async def margin_step() -> bool:
        await derivatives.run_margin()
        return False

    async def funding_step() -> bool:
        return await derivatives.run_funding() > 0

    async def swaps_step() -> bool:
        return await derivatives.run_swaps() > 0

    return [
        PollingJob("derivative-orders", orders_step, orders),
        PollingJob("derivative-triggers", triggers_step, triggers),
        PollingJob("derivative-margin", margin_step, margin),
        PollingJob("funding-payments", funding_step, funding),
        PollingJob("swap-payments", swaps_step, swaps),
    ]


def hedging_job(container: Container, interval: float = EXTERNAL_ORDERS_POLL_SECONDS) -> PollingJob:
    """Hedge orders of Dealer fills (service/hedging.py): time out the overdue ones (admin
    notification ExternalOrderTimeout, best-effort cancel), send the new ones, look up the sent ones;
    at once again while a pass had a full batch of work."""
    hedging = container.hedging

    async def step() -> bool:
        return await hedging.run_external_orders() >= hedging.batch

    return PollingJob("external-orders", step, interval)


def start_background_jobs(container: Container) -> BackgroundJobs:
    return BackgroundJobs(
        [
            callback_delivery_job(container),
            marketdata_job(container),
            price_alert_job(container),
            market_files_job(container),
            *report_jobs(container),
            feeshare_job(container),
            *pricing_jobs(container),
            *derivatives_jobs(container),
            hedging_job(container),
        ]
    ).start()
