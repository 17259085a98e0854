"""OTC fee sharing (otc-fee-sharing.md), mounted at /platformapi/chainup/open. Not built yet."""

from fastapi import APIRouter

PREFIXES = ("/platformapi/chainup/open",)
router = APIRouter(prefix="/platformapi/chainup/open", tags=["feeshare"])
