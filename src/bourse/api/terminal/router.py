"""Multi-venue trading terminal (terminal-exp-v2.md), mounted at /exp/v2. Not built yet."""

from fastapi import APIRouter

PREFIXES = ("/exp/v2",)
router = APIRouter(prefix="/exp/v2", tags=["terminal"])
