"""The FastAPI app factory: every dialect mounted at its prefix, one edge middleware."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bourse import __version__
from bourse.api.brokerage.orders_v3 import HOT_ROUTES as ORDER_HOT_ROUTES
from bourse.api.brokerage.router import router as brokerage_router
from bourse.api.common.edge import EdgeMiddleware
from bourse.api.common.errors import install_error_handlers
from bourse.api.common.hot_path import HotPathMiddleware
from bourse.api.copytrade.router import router as copytrade_router
from bourse.api.feeshare.router import router as feeshare_router
from bourse.api.native.auth import router as auth_router
from bourse.api.native.health import router as health_router
from bourse.api.native.ws import router as ws_router
from bourse.api.terminal.router import router as terminal_router
from bourse.api.wallet.router import router as wallet_router
from bourse.bootstrap import Container
from bourse.jobs.runner import start_background_jobs

YOUNG_GC_THRESHOLD = 20_000

DIALECT_ROUTERS = (wallet_router, terminal_router, copytrade_router, feeshare_router, brokerage_router)


def create_app(container: Container, *, dispose_on_shutdown: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container.settings.engines_on_start:
            # Every market's book rebuilt and checked before the first request (decision 5).
            await container.trading.engines.start_all()
        jobs = start_background_jobs(container) if container.settings.background_jobs else None
        # Everything alive now (modules, the app, the rebuilt books) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it (on a loaded server
        # those walks were 90-150 ms pauses of every request and the engines).
        gc.collect()
        gc.freeze()
        # A young collection every YOUNG_GC_THRESHOLD net allocations instead of CPython's 700:
        # serving an order allocates hundreds of short-lived objects that reference counting frees
        # anyway, so most young collections found nothing to do (bench/orders_http.py round 4:
        # server CPU per order -7 %, p99 40 -> 33-35 ms). Older generations keep their defaults.
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_GC_THRESHOLD, thresholds[1], thresholds[2])
        yield
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        if jobs is not None:
            await jobs.aclose()
        await container.trading.engines.aclose()
        if dispose_on_shutdown:
            await container.aclose()

    app = FastAPI(
        title="bourse",
        version=__version__,
        description="One trading and brokerage core, five API dialects.",
        lifespan=lifespan,
        # No OpenTelemetry from FastAPI itself: the edge middleware keeps the metrics (Prometheus)
        # and the request log. Left on, FastAPI asks all three OpenTelemetry providers, through
        # the process environment, whether it is configured, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(ws_router)
    for router in DIALECT_ROUTERS:
        app.include_router(router)
    # Added first, so it runs inside the edge middleware (request id, log, metrics, rate limit).
    app.add_middleware(HotPathMiddleware, routes=ORDER_HOT_ROUTES)
    app.add_middleware(
        EdgeMiddleware, limiter=container.rate_limiter, genuine=container.identity.token_is_genuine
    )
    return app
