"""Brokerage platform (brokerage-platform.md): front office, market data, history server,
back office and notifications, each mounted at its own prefix."""

from fastapi import APIRouter

from bourse.api.brokerage import orders_v3, orders_v4
from bourse.api.brokerage.transfers import router as transfers_router

PREFIXES = ("/frontoffice", "/marketdata", "/api", "/back-api", "/notification")
router = APIRouter(tags=["brokerage"])
# Orders first: FastAPI tries included routers in order (each level twice), and placing an
# order is the hottest route; no other route matches an orders path, so order is free here.
router.include_router(orders_v3.router)
router.include_router(orders_v4.router)
router.include_router(transfers_router)

from bourse.api.brokerage import backoffice_accounts, frontoffice_accounts  # noqa: E402

router.include_router(backoffice_accounts.router)
router.include_router(frontoffice_accounts.router)

from bourse.api.brokerage import marketdata  # noqa: E402

router.include_router(marketdata.router)

from bourse.api.brokerage import (  # noqa: E402
    account_groups,
    categories,
    commissions,
    market_files,
    markets,
)

# Before markets.backoffice: its GET /markets/{marketId} would take /markets/download.
router.include_router(market_files.router)
router.include_router(categories.backoffice)
router.include_router(categories.frontoffice)
router.include_router(account_groups.router)
router.include_router(markets.backoffice)
router.include_router(markets.frontoffice)
router.include_router(commissions.router)

from bourse.api.brokerage import notifications, workspace  # noqa: E402

router.include_router(workspace.router)
router.include_router(notifications.router)

from bourse.api.brokerage import history  # noqa: E402

router.include_router(history.router)

from bourse.api.brokerage import reports  # noqa: E402

router.include_router(reports.router)

from bourse.api.brokerage import pricing  # noqa: E402

router.include_router(pricing.backoffice)
router.include_router(pricing.marketdata)

from bourse.api.brokerage import derivatives  # noqa: E402

router.include_router(derivatives.router)

from bourse.api.brokerage import venues  # noqa: E402

router.include_router(venues.router)
