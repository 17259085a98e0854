"""Matching: one pure engine per market on integer ticks and lots (see engine.py)."""

from bourse.domain.matching.commands import CancelOrder, PlaceOrder
from bourse.domain.matching.engine import MatchingEngine
from bourse.domain.matching.events import EventKind, Events, RawEvent, typed, typed_all
from bourse.domain.matching.spec import EngineRules, MarketSpec, MarketStatus
from bourse.domain.matching.state import EngineState, RestingOrder, WaitingStop, state_hash

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
