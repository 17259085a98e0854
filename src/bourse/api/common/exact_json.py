"""JSON with exact numbers, both ways: where a spec shows amounts as JSON numbers (the brokerage
history server), a Decimal is written as its plain decimal text, unquoted, never through float;
and a request's JSON numbers are read as Decimal (``0.1`` stays 0.1).

``json.JSONEncoder`` cannot emit a raw number for a custom type, so ``dumps`` walks the value
itself; strings go through ``json.dumps`` (escaping), floats are refused outright.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import Request
from starlette.responses import Response

from bourse.domain.errors import InvalidInput

DEFAULT_MAX_BYTES = 64 * 1024

_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class RawNumber(str):
    """A number already in the exact text a spec shows (``0E-16``, ``0.0004000000000000``),
    written unquoted as it is; refused unless it is a JSON number."""

    def __new__(cls, text: str) -> RawNumber:
        if not _JSON_NUMBER.fullmatch(text):
            raise ValueError(f"{text!r} is not a JSON number")
        return super().__new__(cls, text)


def decimal_text(value: Decimal) -> str:
    """Plain notation (no exponent), no trailing zeros after the point, no rounding, no ``-0``."""
    if not value.is_finite():
        raise ValueError(f"{value} has no JSON form")
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, RawNumber):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(decimal_text(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("floats are not written: amounts are Decimal")
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON keys are strings, not {type(key).__name__}")
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} has no JSON form here")


def dumps(value: Any) -> str:
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """JSON with every non-integer number as Decimal (integers stay int); NaN and Infinity refused."""
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


class ExactJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


async def read_exact_json(request: Request, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The body parsed by ``loads``; an empty body is None. Stops reading (400) past ``max_bytes``."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise InvalidInput(f"the body is longer than {max_bytes} bytes", field="body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except ValueError:
        raise InvalidInput("the body is not valid JSON", field="body") from None
