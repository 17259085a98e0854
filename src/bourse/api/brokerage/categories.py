"""Market categories (brokerage-platform.md): the back office's tree
``/back-api/backoffice/v2/markets-categories`` (GET, PUT) and the traders' view
``/frontoffice/api/v4/markets-categories``.

Shapes here, rules in ``domain/categories.py`` and ``service/categories.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from bourse.api.brokerage.jsonbody import read_json
from bourse.api.common.auth import Meta, Services, require
from bourse.domain.categories import Category, CategoryTree, MarketRef
from bourse.domain.identity import Operation, Principal

backoffice = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: market categories"])
frontoffice = APIRouter(prefix="/frontoffice/api", tags=["brokerage: market categories"])

ViewCommon = Annotated[Principal, Depends(require(Operation.VIEW_COMMON))]
ManageCategories = Annotated[Principal, Depends(require(Operation.MANAGE_MARKETS_CATEGORIES))]
Trader = Annotated[Principal, Depends(require(Operation.TRADING_UI))]

# A whole tree at its limits (500 categories, 1000 market ids each) is a few MB; this bounds
# what one PUT may make the server parse.
MAX_TREE_BYTES = 2 * 1024 * 1024


def _backoffice_tree(
    categories: Sequence[Category], markets: Mapping[str, MarketRef]
) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "name": c.name,
            "markets": [
                {"id": m.id, "displayName": m.display_name, "fullName": m.full_name}
                for m in (markets[i] for i in c.markets)
            ],
            "categories": _backoffice_tree(c.categories, markets),
        }
        for c in categories
    ]


def backoffice_view(tree: CategoryTree) -> dict[str, Any]:
    return {"categories": _backoffice_tree(tree.categories, tree.markets)}


def _frontoffice_tree(categories: Sequence[Category]) -> list[dict[str, Any]]:
    # ``markets`` (ids) is a bourse extension: the spec's front-office shape names no markets.
    return [
        {
            "id": c.id,
            "name": c.name,
            "categories": _frontoffice_tree(c.categories),
            "markets": list(c.markets),
        }
        for c in categories
    ]


@backoffice.get("/markets-categories")
async def get_categories(services: Services, principal: ViewCommon) -> dict[str, Any]:
    return backoffice_view(await services.categories.tree(principal))


@backoffice.put("/markets-categories")
async def put_categories(
    request: Request, services: Services, principal: ManageCategories, meta: Meta
) -> dict[str, Any]:
    body = await read_json(request, MAX_TREE_BYTES)
    return backoffice_view(await services.categories.replace(principal, body, meta))


@frontoffice.get("/v4/markets-categories")
async def v4_categories(services: Services, principal: Trader) -> dict[str, Any]:
    return {"categories": _frontoffice_tree(await services.categories.listed(principal))}
