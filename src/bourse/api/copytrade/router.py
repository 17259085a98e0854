"""Automated-strategy SaaS (copytrade-v1.md), mounted at /v1. Not built yet."""

from fastapi import APIRouter

PREFIXES = ("/v1",)
router = APIRouter(prefix="/v1", tags=["copytrade"])
