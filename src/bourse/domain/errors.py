"""The one exception tree of bourse.

Every error a caller can cause is a ``BourseError`` with a stable ``code``;
each API dialect maps these onto its own envelope and codes (``api/<dialect>/``).
Third-party errors are translated where they arise (``raise ... from e``).

    BourseError
    ├── InvalidInput            bad shape, scale or range of an input
    ├── NotAuthenticated        no, bad, expired or revoked credentials
    ├── PermissionDenied        authenticated, but the operation is not granted
    ├── NotFound                no such object, or not the caller's
    ├── Conflict                the request contradicts stored state
    │   └── IdempotencyConflict same business key, different request
    ├── InProgress              same business key, first request still running
    ├── TooManyRequests         throttled; ``retry_after`` seconds
    ├── BusinessRejection       a valid request the rules refuse
    │   └── InsufficientFunds
    ├── InvariantViolation      a broken invariant: a bug, fail fast
    └── VenueError              an external venue did not do what was asked (domain/venues.py:
        ├── VenueUnavailable    not reached or not serving; may be retried
        ├── VenueRejected       refused the order; retrying cannot help
        └── VenueTimeout        no answer; whether it has the order is unknown)
"""

from __future__ import annotations

from typing import Any


class BourseError(Exception):
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(BourseError):
    code = "invalid_input"


class NotAuthenticated(BourseError):
    code = "not_authenticated"


class PermissionDenied(BourseError):
    code = "permission_denied"


class NotFound(BourseError):
    code = "not_found"


class Conflict(BourseError):
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class InProgress(BourseError):
    code = "in_progress"


class TooManyRequests(BourseError):
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = max(1, retry_after)


class BusinessRejection(BourseError):
    code = "rejected"


class InsufficientFunds(BusinessRejection):
    code = "insufficient_funds"


class InvariantViolation(BourseError):
    code = "invariant_violation"
