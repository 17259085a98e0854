"""Outboxes: messages written in the transaction of the change they report, delivered afterwards.

A delivery job claims due rows, attempts each and records the attempt; a failed attempt is retried
after an exponential backoff until the policy gives up, and then staff are told. Two outboxes use
it: transfer status callbacks (domain/callbacks.py) and report mails (domain/reports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``base * 2**(n-1)`` seconds after the n-th failure, capped, then given up."""

    max_attempts: int = 8
    base_delay_seconds: float = 2.0
    max_delay_seconds: float = 900.0

    def __post_init__(self) -> None:
        if (
            self.max_attempts < 1
            or self.base_delay_seconds <= 0
            or self.max_delay_seconds < self.base_delay_seconds
        ):
            raise ValueError("retry policy needs max_attempts >= 1 and 0 < base_delay <= max_delay")

    def delay_after(self, attempts: int) -> float | None:
        """Seconds to wait after ``attempts`` failed attempts; None means give up."""
        if attempts >= self.max_attempts:
            return None
        return min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempts - 1))


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: refused for good, or every attempt failed
