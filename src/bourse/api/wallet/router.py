"""Seamless wallet (../shared/specs/wallet-ext-orders.md), mounted at /ext-orders."""

from fastapi import APIRouter

PREFIXES = ("/ext-orders",)
router = APIRouter(prefix="/ext-orders", tags=["wallet"])
