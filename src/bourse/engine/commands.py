"""What a market's runner is asked to do, how it is tuned, and what it reads besides the market."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from bourse.domain.errors import BourseError, NotFound
from bourse.domain.fees import CommissionRule, min_fee_in_asset, select_rule
from bourse.domain.history import rates_to_root
from bourse.domain.markets import Market
from bourse.domain.order_requests import OrderRequest
from bourse.domain.trading import FeeTerms
from bourse.domain.values import AccountId, AssetId
from bourse.service.ports import UnitOfWork


class EngineFailure(BourseError):
    """A batch could not be committed; it was not acknowledged and the book was rebuilt from the database."""

    code = "engine_failure"


class PlaceCommand(NamedTuple):
    account_id: AccountId
    request: OrderRequest


class CancelCommand(NamedTuple):
    account_id: AccountId
    order_id: int
    stop_only: bool = False


class Noop(NamedTuple):
    """Run a batch now (tests: let Gtd expiry happen after moving the clock)."""


Command = PlaceCommand | CancelCommand | Noop


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    max_batch: int = 512
    # How often an idle runner wakes to expire Gtd orders.
    idle_seconds: float = 0.25
    # Recompute the digest from the whole book after every batch and compare (tests).
    verify_digest: bool = False
    # How many batches may be writing and committing at once while the next one is matched
    # (runner.py, "the loop"); 1 writes one batch at a time.
    pipeline: int = 2


async def root_rate(uow: UnitOfWork, asset: AssetId, root: AssetId) -> Decimal | None:
    """What one unit of ``asset`` is worth in the root asset now: the platform's one conversion
    (``domain.history.rates_to_root`` over spot last prices, as every ``...InRAT``); None
    without such a price. The root itself is 1 without a read."""
    if asset == root:
        return Decimal(1)
    return rates_to_root(root, [asset], await uow.history.last_prices()).rate(asset)


class FeeTermsCache:
    """Each account's commission rules, read once per ``ttl`` seconds (shared by every runner).

    An order's fee terms are fixed when it is placed, so a changed profile applies to orders
    placed at most ``ttl`` seconds after the change. A rule's minimum fee is converted into the
    quote asset at the prices of the batch that places the order (``root_rate``), not cached.
    """

    def __init__(self, ttl: float = 5.0, root_asset: str = "RAT") -> None:
        self._ttl = ttl
        self.root = AssetId(root_asset)
        self._rules: dict[AccountId, tuple[float, list[CommissionRule]]] = {}

    async def terms(
        self, uow: UnitOfWork, accounts: Sequence[AccountId], market: Market, quote_scale: int = 18
    ) -> dict[AccountId, FeeTerms]:
        now = asyncio.get_running_loop().time()
        rules: dict[AccountId, list[CommissionRule]] = {}
        stale = []
        for account in accounts:
            cached = self._rules.get(account)
            if cached is None or cached[0] < now:
                stale.append(account)
            else:
                rules[account] = cached[1]
        if stale:
            # One query for every account due (a batch's traders often all expire together).
            fresh = await uow.commissions.rules_for_accounts(stale)
            if len(self._rules) + len(fresh) > 100_000:
                self._rules.clear()
            for account in stale:
                if account not in fresh:
                    raise NotFound(f"account {account} not found", field="accountId")
                rules[account] = fresh[account]
                self._rules[account] = (now + self._ttl, fresh[account])
        selected = {a: select_rule(rules[a], market) for a in accounts}
        if all(rule.min_fee_rat is None for rule in selected.values()):
            return {a: FeeTerms.of(rule) for a, rule in selected.items()}
        # One conversion per batch: the minimums in the quote asset at the prices committed now.
        rate = await root_rate(uow, market.quote_asset, self.root)
        return {
            a: FeeTerms.of(rule, min_fee_in_asset(rule.min_fee_rat, rate, quote_scale))
            for a, rule in selected.items()
        }
