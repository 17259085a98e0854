"""Commission profiles and their rules: the back office edits them, trading asks which rule applies.

Every change to a profile's rules locks the profile row first, so concurrent
edits of one profile take turns and the checks here (one default rule, one rule
per market or market group, distinct priorities) see a settled state. A change
and its new priorities commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import BusinessRejection, InvalidInput, NotFound
from bourse.domain.fees import (
    DEFAULT_PROFILE_ID,
    MAX_PRIORITY,
    CommissionProfile,
    CommissionRule,
    RuleFees,
    check_profile_id,
    select_rule,
)
from bourse.domain.identity import Operation, Principal
from bourse.domain.markets import MAX_LABEL_LENGTH, MAX_NAME_LENGTH, Market
from bourse.domain.values import AccountId
from bourse.service.context import RequestMeta
from bourse.service.ports import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class RuleTarget:
    """What a rule applies to: one market, one market group, or (both None) every market."""

    market_id: str | None = None
    market_group_id: str | None = None


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule with the names the back office shows next to the ids."""

    rule: CommissionRule
    profile: CommissionProfile
    market: Market | None


class FeeService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    # --- for trading --------------------------------------------------------------------------

    async def rule_for(self, uow: UnitOfWork, account_id: AccountId, market: Market) -> CommissionRule:
        """The rule the account pays by on ``market``, read in the caller's unit of work."""
        rules = await uow.commissions.rules_for_account(account_id)
        if rules is None:
            raise NotFound(f"account {account_id} not found", field="accountId")
        return select_rule(rules, market)

    # --- back office: reading -----------------------------------------------------------------

    async def rules(self, principal: Principal, profile_id: str) -> list[RuleView]:
        """The profile's rules by priority."""
        principal.require(Operation.VIEW_COMMISSION_RULES)
        async with self._uow() as uow:
            profile = await _profile(uow, profile_id)
            rules = await uow.commissions.rules(profile_id)
            markets = {}
            for market_id in {r.market_id for r in rules if r.market_id}:
                market = await uow.markets.get(market_id)
                if market is not None:
                    markets[market_id] = market
        return [RuleView(r, profile, markets.get(r.market_id or "")) for r in rules]

    async def profiles(self, principal: Principal) -> list[CommissionProfile]:
        principal.require(Operation.VIEW_COMMISSION_RULES)
        async with self._uow() as uow:
            return await uow.commissions.list_profiles()

    async def profile_of(self, principal: Principal, account_id: AccountId) -> str:
        principal.require(Operation.VIEW_COMMISSION_RULES)
        async with self._uow() as uow:
            profile_id = await uow.commissions.profile_of_account(account_id)
        if profile_id is None:
            raise NotFound(f"account {account_id} not found", field="accountId")
        return profile_id

    # --- back office: rules -------------------------------------------------------------------

    async def add_rule(
        self,
        principal: Principal,
        profile_id: str,
        target: RuleTarget,
        fees: RuleFees,
        priority: int | None,
        priorities: Sequence[tuple[str, int]],
        meta: RequestMeta,
    ) -> CommissionRule:
        """A market or market-group rule (a profile has exactly one default rule, made with it).
        ``priority`` defaults to after the last rule; ``priorities`` moves other rules in the same step."""
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id, for_update=True)
            rules = await uow.commissions.rules(profile_id)
            if not target.market_id and not target.market_group_id:
                raise BusinessRejection(
                    "a profile has one default rule; a new rule needs a marketId or a marketGroupId",
                    field="marketId",
                )
            await _check_target(uow, rules, target, None)
            if priority is None:
                priority = max((r.priority for r in rules), default=0) + 1
            rule = CommissionRule(
                id=uuid.uuid4().hex,
                profile_id=profile_id,
                priority=priority,
                is_default=False,
                market_id=target.market_id,
                market_group_id=target.market_group_id,
                fee_type=fees.fee_type,
                maker_size=fees.maker_size,
                taker_size=fees.taker_size,
                min_fee_rat=fees.min_fee_rat,
                cfd=fees.cfd,
            )
            moves = _moves(rules, priorities)
            _check_priorities([*rules, rule], moves)
            await uow.commissions.add_rule(rule)
            await uow.commissions.set_priorities(profile_id, moves)
            await _audit(uow, principal, profile_id, "add", rule.id, meta)
            await uow.commit()
        return rule

    async def update_rule(
        self,
        principal: Principal,
        profile_id: str,
        rule_id: str,
        target: RuleTarget,
        fees: RuleFees,
        priorities: Sequence[tuple[str, int]],
        meta: RequestMeta,
    ) -> CommissionRule:
        """Replace the rule's target and fees (its priority moves only through ``priorities``)."""
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id, for_update=True)
            rules = await uow.commissions.rules(profile_id)
            current = _rule(rules, rule_id)
            await _check_target(uow, rules, target, current)
            rule = replace(
                current,
                market_id=target.market_id,
                market_group_id=target.market_group_id,
                fee_type=fees.fee_type,
                maker_size=fees.maker_size,
                taker_size=fees.taker_size,
                min_fee_rat=fees.min_fee_rat,
                cfd=fees.cfd,
            )
            moves = _moves(rules, priorities)
            _check_priorities(rules, moves)
            await uow.commissions.update_rule(rule)
            await uow.commissions.set_priorities(profile_id, moves)
            await _audit(uow, principal, profile_id, "update", rule_id, meta)
            await uow.commit()
        return rule

    async def validate_update(
        self, principal: Principal, profile_id: str, rule_id: str, target: RuleTarget
    ) -> None:
        """Raises what ``update_rule`` with this target would raise; changes nothing."""
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id)
            rules = await uow.commissions.rules(profile_id)
            await _check_target(uow, rules, target, _rule(rules, rule_id))

    async def delete_rule(
        self, principal: Principal, profile_id: str, rule_id: str, meta: RequestMeta
    ) -> None:
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id, for_update=True)
            _check_delete(_rule(await uow.commissions.rules(profile_id), rule_id))
            await uow.commissions.delete_rule(profile_id, rule_id)
            await _audit(uow, principal, profile_id, "delete", rule_id, meta)
            await uow.commit()

    async def validate_delete(self, principal: Principal, profile_id: str, rule_id: str) -> None:
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id)
            _check_delete(_rule(await uow.commissions.rules(profile_id), rule_id))

    async def set_priorities(
        self, principal: Principal, profile_id: str, priorities: Sequence[tuple[str, int]], meta: RequestMeta
    ) -> None:
        """Reorder in one step: every named rule gets its priority, or none does."""
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id, for_update=True)
            rules = await uow.commissions.rules(profile_id)
            moves = _moves(rules, priorities, missing=NotFound)
            _check_priorities(rules, moves)
            await uow.commissions.set_priorities(profile_id, moves)
            await _audit(uow, principal, profile_id, "priorities", None, meta)
            await uow.commit()

    # --- back office: profiles (bourse extensions) --------------------------------------------

    async def create_profile(
        self, principal: Principal, profile_id: str, name: str, fees: RuleFees | None, meta: RequestMeta
    ) -> CommissionProfile:
        """A profile with its default rule: ``fees``, or a copy of the default profile's default rule."""
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        check_profile_id(profile_id)
        if not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"commissionProfileName must be 1-{MAX_NAME_LENGTH} characters", field="name")
        profile = CommissionProfile(profile_id, name.strip())
        async with self._uow() as uow:
            if fees is None:
                template = next(r for r in await uow.commissions.rules(DEFAULT_PROFILE_ID) if r.is_default)
                fees = RuleFees(
                    template.fee_type,
                    template.maker_size,
                    template.taker_size,
                    template.min_fee_rat,
                    template.cfd,
                )
            await uow.commissions.add_profile(profile)
            default = CommissionRule(
                id=uuid.uuid4().hex,
                profile_id=profile_id,
                priority=1,
                is_default=True,
                market_id=None,
                market_group_id=None,
                fee_type=fees.fee_type,
                maker_size=fees.maker_size,
                taker_size=fees.taker_size,
                min_fee_rat=fees.min_fee_rat,
                cfd=fees.cfd,
            )
            await uow.commissions.add_rule(default)
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.COMMISSION_PROFILE_CREATED,
                    f"commission_profile:{profile_id}",
                    meta.request_id,
                    meta.ip,
                    {"name": profile.name},
                )
            )
            await uow.commit()
        return profile

    async def assign_profile(
        self, principal: Principal, account_id: AccountId, profile_id: str, meta: RequestMeta
    ) -> None:
        """The account pays by ``profile_id`` from its next trade on."""
        principal.require(Operation.MANAGE_COMMISSION_RULES)
        async with self._uow() as uow:
            await _profile(uow, profile_id)
            if not await uow.commissions.set_account_profile(account_id, profile_id):
                raise NotFound(f"account {account_id} not found", field="accountId")
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.COMMISSION_PROFILE_ASSIGNED,
                    f"account:{account_id}",
                    meta.request_id,
                    meta.ip,
                    {"commission_profile_id": profile_id},
                )
            )
            await uow.commit()


# --- checks -------------------------------------------------------------------------------------


async def _profile(uow: UnitOfWork, profile_id: str, *, for_update: bool = False) -> CommissionProfile:
    profile = await uow.commissions.get_profile(profile_id, for_update=for_update)
    if profile is None:
        raise NotFound(f"commission profile {profile_id} not found", field="commissionProfileId")
    return profile


def _rule(rules: Sequence[CommissionRule], rule_id: str) -> CommissionRule:
    for rule in rules:
        if rule.id == rule_id:
            return rule
    raise NotFound(f"commission rule {rule_id} not found", field="commissionProfileRuleId")


async def _check_target(
    uow: UnitOfWork, rules: Sequence[CommissionRule], target: RuleTarget, current: CommissionRule | None
) -> None:
    market_id, group_id = target.market_id, target.market_group_id
    if current is not None and current.is_default:
        if market_id or group_id:
            raise BusinessRejection(
                "the default rule applies to every market; it takes no marketId or marketGroupId",
                field="marketId",
            )
        return
    if bool(market_id) == bool(group_id):
        raise InvalidInput("a rule needs exactly one of marketId and marketGroupId", field="marketId")
    if group_id is not None and len(group_id) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"marketGroupId must be 1-{MAX_LABEL_LENGTH} characters", field="marketGroupId")
    if market_id and await uow.markets.get(market_id) is None:
        raise BusinessRejection(f"market {market_id} does not exist", field="marketId")
    for other in rules:
        if current is not None and other.id == current.id:
            continue
        if market_id and other.market_id == market_id:
            raise BusinessRejection(
                f"the profile already has a rule for market {market_id} ({other.id})", field="marketId"
            )
        if group_id and other.market_group_id == group_id:
            raise BusinessRejection(
                f"the profile already has a rule for market group {group_id} ({other.id})",
                field="marketGroupId",
            )


def _check_delete(rule: CommissionRule) -> None:
    if rule.is_default:
        raise BusinessRejection("the default rule cannot be deleted", field="commissionProfileRuleId")


def _moves(
    rules: Sequence[CommissionRule],
    priorities: Sequence[tuple[str, int]],
    missing: type[InvalidInput] | type[NotFound] = InvalidInput,
) -> dict[str, int]:
    known = {r.id for r in rules}
    moves: dict[str, int] = {}
    for rule_id, priority in priorities:
        if rule_id not in known:
            raise missing(f"commission rule {rule_id} not found", field="commissionProfileRuleId")
        if rule_id in moves:
            raise InvalidInput(f"rule {rule_id} is named twice", field="commissionProfileRuleId")
        if not 0 <= priority <= MAX_PRIORITY:
            raise InvalidInput(f"priority must be between 0 and {MAX_PRIORITY}", field="priority")
        moves[rule_id] = priority
    return moves


def _check_priorities(rules: Sequence[CommissionRule], moves: Mapping[str, int]) -> None:
    seen: dict[int, str] = {}
    for rule in rules:
        priority = moves.get(rule.id, rule.priority)
        if priority in seen:
            raise BusinessRejection(
                f"rules {seen[priority]} and {rule.id} would share priority {priority}", field="priority"
            )
        seen[priority] = rule.id


async def _audit(
    uow: UnitOfWork,
    principal: Principal,
    profile_id: str,
    change: str,
    rule_id: str | None,
    meta: RequestMeta,
) -> None:
    await uow.audit.append(
        AuditEntry(
            principal.username,
            AuditAction.COMMISSION_RULES_CHANGED,
            f"commission_profile:{profile_id}",
            meta.request_id,
            meta.ip,
            {"change": change, "rule_id": rule_id},
        )
    )
