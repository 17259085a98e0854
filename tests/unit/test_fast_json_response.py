"""The hot routes' orjson rendering writes what Starlette's JSONResponse writes."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse

from bourse.api.common.responses import FastJSONResponse


@pytest.mark.parametrize(
    "content",
    [
        {"order": {"orderId": "42", "requestedPrice": "99.96", "rejectDetails": None, "postOnly": True}},
        {"order": {"marketDisplayName": "Éther / €uro — 以太坊", "clientOrderId": 'a"b\\c\n\t'}},
        {"data": [], "n": 0, "big": 2**63 - 1, "neg": -(2**63)},
    ],
)
def test_the_same_bytes_as_starlette(content: object) -> None:
    assert FastJSONResponse(content).body == JSONResponse(content).body


def test_what_orjson_refuses_is_rendered_as_starlette_renders_it() -> None:
    content = {"huge": 2**70, "nested": {"k": [1, 2]}}
    assert FastJSONResponse(content).body == JSONResponse(content).body
    with pytest.raises(TypeError):
        FastJSONResponse({"x": object()})
