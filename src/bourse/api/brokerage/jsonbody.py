"""Reading a JSON body ourselves: bounded in size, and parsed by the domain so every error names its field."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from bourse.domain.errors import InvalidInput

DEFAULT_MAX_BYTES = 16 * 1024


async def read_json(request: Request, max_bytes: int = DEFAULT_MAX_BYTES, *, required: bool = True) -> Any:
    """The body as JSON; stops reading (400) once it is longer than ``max_bytes``. An empty body is
    None when not ``required``."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise InvalidInput(f"the body is longer than {max_bytes} bytes", field="body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise InvalidInput("a JSON body is required", field="body")
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidInput("the body is not valid JSON", field="body") from None
