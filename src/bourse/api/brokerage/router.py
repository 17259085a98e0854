"""Brokerage platform (brokerage-platform.md): front office, market data, history server,
back office and notifications, each mounted at its own prefix."""

from fastapi import APIRouter

PREFIXES = ("/frontoffice", "/marketdata", "/api", "/back-api", "/notification")
router = APIRouter(tags=["brokerage"])
