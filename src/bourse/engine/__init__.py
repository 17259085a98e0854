"""Matching engine runners: one asyncio task per market, group commit, recovery (see runner.py).

Only ``bootstrap`` imports this package; the edges reach it through ``service.trading``.
"""

from bourse.engine.hub import EngineHub
from bourse.engine.runner import EngineFailure, MarketRunner, RunnerSettings

__all__ = ["EngineFailure", "EngineHub", "MarketRunner", "RunnerSettings"]
