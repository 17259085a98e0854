"""Matching: one pure engine per market on integer ticks and lots (see engine.py)."""

from bourse.domain.matching.commands import CancelOrder, PlaceOrder
from bourse.domain.matching.engine import EngineState, MatchingEngine, RestingOrder, WaitingStop, state_hash
from bourse.domain.matching.events import Events, EventKind, RawEvent, typed, typed_all
from bourse.domain.matching.spec import EngineRules, MarketSpec, MarketStatus

__all__ = [
    "CancelOrder",
    "EngineRules",
    "EngineState",
    "EventKind",
    "Events",
    "MarketSpec",
    "MarketStatus",
    "MatchingEngine",
    "PlaceOrder",
    "RawEvent",
    "RestingOrder",
    "WaitingStop",
    "state_hash",
    "typed",
    "typed_all",
]
