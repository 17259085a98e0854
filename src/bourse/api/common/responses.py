"""JSON answers of the hot routes, rendered by orjson.

Starlette's ``JSONResponse`` renders with ``json.dumps`` (~6-12 us for an order's answer);
orjson writes the same bytes (compact separators, UTF-8, keys in insertion order) in well under
a microsecond. What orjson refuses (an integer beyond 64 bits, a non-string key, a type it does
not know) is rendered by ``json.dumps`` as ``JSONResponse`` would, error included. One difference:
a float NaN or infinity becomes ``null`` where ``JSONResponse`` raises; the answers rendered here
hold strings, integers, booleans and None only (money is a string everywhere).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)
