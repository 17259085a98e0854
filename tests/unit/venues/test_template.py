"""The venue template is a skeleton to copy, not code the platform runs."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bourse
from bourse.domain.orders import Side
from bourse.domain.venues import (
    VenueCredentials,
    VenueOrderRef,
    VenueOrderRequest,
    VenueOrderState,
    VenueTimeout,
)

SRC = Path(bourse.__file__).parent
TEMPLATE = SRC / "adapters" / "venues" / "_template"


def test_nothing_imports_the_template_and_it_is_not_a_package():
    assert not (TEMPLATE / "__init__.py").exists()
    for path in SRC.rglob("*.py"):
        if TEMPLATE not in path.parents:
            imports = [
                line
                for line in path.read_text().splitlines()
                if line.lstrip().startswith(("import ", "from "))
            ]
            assert not [line for line in imports if "_template" in line], path


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("venue_template", TEMPLATE / "venue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Client:
    async def create_order(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "id": 5,
            "client_id": kwargs["client_id"],
            "state": "filled",
            "amount": kwargs["amount"],
            "filled": "1.5",
            "avg_price": 0.1,
        }

    async def get_order(self, symbol: str, **kwargs: Any) -> dict[str, Any]:
        raise TimeoutError("no answer")

    async def cancel_order(self, symbol: str, **kwargs: Any) -> dict[str, Any]:
        return {"id": "x"}  # no state: unreadable


async def test_the_skeleton_works_as_written_so_a_copy_starts_from_working_code():
    template = _load()
    venue = template.TemplateVenue(
        VenueCredentials("k", "s"), lambda creds, timeout: Client(), timeout_seconds=1
    )
    placed = await venue.place(VenueOrderRequest("H1", "BTC/USDT", Side.BUY, Decimal("1.5")))
    assert (placed.lp_order_id, placed.state, str(placed.average_price)) == (
        "5",
        VenueOrderState.FILLED,
        "0.1",
    )
    with pytest.raises(VenueTimeout):
        await venue.get(VenueOrderRef("BTC/USDT", "H1", "5"))
    with pytest.raises(Exception, match="unreadable order answer"):
        await venue.cancel(VenueOrderRef("BTC/USDT", "H1", "5"))
