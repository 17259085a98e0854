"""The market category tree: the back office reads and replaces it, traders read it.

A replacement is all or nothing: every market it names must exist (else 400
naming the first unknown one, and every unknown id in ``details.markets``), and
the old tree is deleted and the new one stored in one transaction. Concurrent
replacements take turns; the last one wins whole, never a mix of two.
"""

from __future__ import annotations

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.categories import (
    Category,
    CategoryTree,
    flatten,
    parse_tree,
    referenced_markets,
    unknown_markets,
    walk,
    without_hidden,
)
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Operation, Principal
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, UnitOfWorkFactory


class CategoryService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def tree(self, principal: Principal) -> CategoryTree:
        """The back office's view: every market in it, hidden ones too."""
        principal.require(Operation.VIEW_COMMON)
        async with self._uow() as uow:
            return await uow.categories.tree()

    async def listed(self, principal: Principal) -> list[Category]:
        """The trader's view: the same tree without hidden markets."""
        principal.require(Operation.TRADING_UI)
        async with self._uow() as uow:
            tree = await uow.categories.tree()
        return without_hidden(tree.categories, tree.markets)

    async def replace(self, principal: Principal, body: object, meta: RequestMeta) -> CategoryTree:
        """Store the tree of a PUT body in place of the current one; the stored tree back."""
        principal.require(Operation.MANAGE_MARKETS_CATEGORIES)
        categories = parse_tree(body)
        async with self._uow() as uow:
            await uow.categories.lock()
            existing = await uow.categories.existing_markets(sorted(referenced_markets(categories)))
            unknown = unknown_markets(categories, existing)
            if unknown:
                market_id, where = unknown[0]
                raise InvalidInput(
                    f"market {market_id} does not exist",
                    field=where,
                    markets=sorted({m for m, _ in unknown}),
                )
            await uow.categories.replace(flatten(categories), self._clock.now())
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.MARKET_CATEGORIES_REPLACED,
                    "market-categories",
                    meta.request_id,
                    meta.ip,
                    {
                        "categories": sum(1 for _ in walk(categories)),
                        "markets": len(referenced_markets(categories)),
                    },
                )
            )
            stored = await uow.categories.tree()
            await uow.commit()
        return stored
