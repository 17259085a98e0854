"""Commission profiles and rules (brokerage-platform.md, back office), at
``/back-api/backoffice/v2/commission-profiles/{commissionProfileId}/rules...``.

Plus bourse extensions (documented): list and create profiles, and set an
account's profile. Shapes here, rules in ``service/fees.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.fees import fee_settings_view, parse_fee_settings
from bourse.domain.identity import Operation, Principal
from bourse.domain.values import AccountId
from bourse.service.fees import RuleTarget, RuleView

router = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: commissions"])
RULES = "/commission-profiles/{profile_id}/rules"

Viewer = Annotated[Principal, Depends(require(Operation.VIEW_COMMISSION_RULES))]
Manager = Annotated[Principal, Depends(require(Operation.MANAGE_COMMISSION_RULES))]


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commissionProfileRuleId: str
    priority: int = Field(strict=True)


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marketId: str | None = None
    marketGroupId: str | None = None
    # Parsed in the domain (feeSettings.spot {type, size, makerSize?, takerSize?}, cfd, minFeeRAT).
    feeSettings: dict[str, Any]
    priority: int | None = Field(default=None, strict=True)

    def target(self) -> RuleTarget:
        return RuleTarget(self.marketId or None, self.marketGroupId or None)


class RuleUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marketId: str | None = None
    marketGroupId: str | None = None
    feeSettings: dict[str, Any]


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    marketId: str | None = None
    marketGroupId: str | None = None


class CreateRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commissionProfileRule: RuleIn
    priorities: list[PriorityIn] = []


class UpdateRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commissionProfileRule: RuleUpdateIn
    priorities: list[PriorityIn] = []


class ValidateUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commissionProfileRule: TargetIn


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commissionProfileId: str
    commissionProfileName: str
    feeSettings: dict[str, Any] | None = None


class AccountProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commissionProfileId: str


def _pairs(items: list[PriorityIn]) -> list[tuple[str, int]]:
    return [(p.commissionProfileRuleId, p.priority) for p in items]


def rule_view(v: RuleView) -> dict[str, Any]:
    r = v.rule
    return {
        "commissionProfileRuleId": r.id,
        "priority": r.priority,
        "isDefault": r.is_default,
        "feeSettings": fee_settings_view(r),
        "marketId": r.market_id,
        "marketName": None if v.market is None else v.market.display_name,
        "marketGroupId": r.market_group_id,
        # No registry of market groups yet: a group's name is its id.
        "marketGroupName": r.market_group_id,
        "commissionProfileId": v.profile.id,
        "commissionProfileName": v.profile.name,
    }


@router.get(RULES)
async def list_rules(profile_id: str, services: Services, principal: Viewer) -> list[dict[str, Any]]:
    return [rule_view(v) for v in await services.fees.rules(principal, profile_id)]


@router.post(RULES, status_code=201)
async def add_rule(
    profile_id: str, body: CreateRuleIn, services: Services, principal: Manager, meta: Meta
) -> dict[str, str]:
    rule_in = body.commissionProfileRule
    rule = await services.fees.add_rule(
        principal,
        profile_id,
        rule_in.target(),
        parse_fee_settings(rule_in.feeSettings),
        rule_in.priority,
        _pairs(body.priorities),
        meta,
    )
    return {"id": rule.id}


# Registered before "/{rule_id}" so "priorities" is never taken for a rule id.
@router.put(RULES + "/priorities", status_code=204, response_class=Response)
async def set_priorities(
    profile_id: str, body: list[PriorityIn], services: Services, principal: Manager, meta: Meta
) -> Response:
    await services.fees.set_priorities(principal, profile_id, _pairs(body), meta)
    return Response(status_code=204)


@router.put(RULES + "/{rule_id}", status_code=204, response_class=Response)
async def update_rule(
    profile_id: str, rule_id: str, body: UpdateRuleIn, services: Services, principal: Manager, meta: Meta
) -> Response:
    rule_in = body.commissionProfileRule
    target = RuleTarget(rule_in.marketId or None, rule_in.marketGroupId or None)
    await services.fees.update_rule(
        principal,
        profile_id,
        rule_id,
        target,
        parse_fee_settings(rule_in.feeSettings),
        _pairs(body.priorities),
        meta,
    )
    return Response(status_code=204)


@router.delete(RULES + "/{rule_id}", status_code=204, response_class=Response)
async def delete_rule(
    profile_id: str, rule_id: str, services: Services, principal: Manager, meta: Meta
) -> Response:
    await services.fees.delete_rule(principal, profile_id, rule_id, meta)
    return Response(status_code=204)


@router.post(RULES + "/{rule_id}/validate-update")
async def validate_update(
    profile_id: str, rule_id: str, body: ValidateUpdateIn, services: Services, principal: Manager
) -> dict[str, Any]:
    target = RuleTarget(
        body.commissionProfileRule.marketId or None, body.commissionProfileRule.marketGroupId or None
    )
    await services.fees.validate_update(principal, profile_id, rule_id, target)
    return {}


@router.post(RULES + "/{rule_id}/validate-delete")
async def validate_delete(
    profile_id: str, rule_id: str, services: Services, principal: Manager
) -> dict[str, Any]:
    await services.fees.validate_delete(principal, profile_id, rule_id)
    return {}


# --- bourse extensions --------------------------------------------------------------------------


@router.get("/commission-profiles")
async def list_profiles(services: Services, principal: Viewer) -> list[dict[str, str]]:
    return [
        {"commissionProfileId": p.id, "commissionProfileName": p.name}
        for p in await services.fees.profiles(principal)
    ]


@router.post("/commission-profiles", status_code=201)
async def create_profile(
    body: ProfileIn, services: Services, principal: Manager, meta: Meta
) -> dict[str, str]:
    fees = None if body.feeSettings is None else parse_fee_settings(body.feeSettings)
    profile = await services.fees.create_profile(
        principal, body.commissionProfileId, body.commissionProfileName, fees, meta
    )
    return {"id": profile.id}


@router.get("/accounts/{account_id}/commission-profile")
async def account_profile(account_id: str, services: Services, principal: Viewer) -> dict[str, str]:
    return {"commissionProfileId": await services.fees.profile_of(principal, AccountId(account_id))}


@router.put("/accounts/{account_id}/commission-profile", status_code=204, response_class=Response)
async def assign_profile(
    account_id: str, body: AccountProfileIn, services: Services, principal: Manager, meta: Meta
) -> Response:
    await services.fees.assign_profile(principal, AccountId(account_id), body.commissionProfileId, meta)
    return Response(status_code=204)
