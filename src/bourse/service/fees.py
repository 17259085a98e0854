"""Commission profiles and their rules: the back office edits them, trading asks which rule applies.

Every change to a profile's rules locks the profile row first, so concurrent
edits of one profile take turns and the checks below (one default rule, one
rule per market or group, distinct priorities) see a settled state.
"""

from __future__ import annotations

from dataclasses import dataclass

from bourse.domain.errors import NotFound
from bourse.domain.fees import CfdFee, CommissionProfile, CommissionRule, FeeType, select_rule
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import Market
from bourse.domain.values import AccountId
from bourse.service.ports import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class FeeSettings:
    """A rule's fees as a back-office body gives them (already parsed)."""

    fee_type: FeeType
    maker_size: object
    taker_size: object
    min_fee_rat: object | None = None
    cfd: CfdFee | None = None


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule with the names the back office shows next to the ids."""

    rule: CommissionRule
    profile: CommissionProfile
    market: Market | None


class FeeService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def rule_for(self, uow: UnitOfWork, account_id: AccountId, market: Market) -> CommissionRule:
        """The rule the account pays by on ``market``, read in the caller's unit of work."""
        rules = await uow.commissions.rules_for_account(account_id)
        if rules is None:
            raise NotFound(f"account {account_id} not found", field="accountId")
        return select_rule(rules, market)

    async def rules(self, principal: Principal, profile_id: str) -> list[RuleView]:
        principal.require(Operation.VIEW_COMMISSION_RULES)
        async with self._uow() as uow:
            profile = await _profile(uow, profile_id)
            rules = await uow.commissions.rules(profile_id)
            markets = {m.id: m for m in await uow.markets.list()} if any(r.market_id for r in rules) else {}
        return [RuleView(r, profile, markets.get(r.market_id or "")) for r in rules]


async def _profile(uow: UnitOfWork, profile_id: str, *, for_update: bool = False) -> CommissionProfile:
    profile = await uow.commissions.get_profile(profile_id, for_update=for_update)
    if profile is None:
        raise NotFound(f"commission profile {profile_id} not found", field="commissionProfileId")
    return profile
