"""Where a request came from, carried into every use case for the audit trail."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestMeta:
    request_id: str | None = None
    ip: str | None = None

    @classmethod
    def cli(cls) -> RequestMeta:
        return cls(request_id=None, ip="cli")
