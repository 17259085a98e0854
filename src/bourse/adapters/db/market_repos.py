"""Repositories for markets and commission profiles (tables in market_tables.py)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    cast,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import market_tables as mt
from bourse.adapters.db import tables as t
from bourse.domain.errors import Conflict, InvalidInput, NotFound
from bourse.domain.fees import CfdFee, CommissionProfile, CommissionRule, FeeType
from bourse.domain.markets import (
    Market,
    MarketQuery,
    MarketSortField,
    MarketStatus,
    MarketType,
    SessionStatus,
    SortDirection,
    SwapLeg,
    SwapSettings,
    SwapType,
    calendar_from_json,
    calendar_to_json,
)
from bourse.domain.values import AccountId, AssetId, format_decimal


def _pg(e: DBAPIError) -> Any:
    cause = getattr(e.orig, "__cause__", None)
    return cause if cause is not None and hasattr(cause, "sqlstate") else e.orig


def _sqlstate(e: DBAPIError) -> str:
    return str(getattr(_pg(e), "sqlstate", "") or "")


def _constraint(e: DBAPIError) -> str:
    return str(getattr(_pg(e), "constraint_name", "") or "")


def _norm(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.normalize()


# --- markets ------------------------------------------------------------------------------------


def _swap_to_json(swap: SwapSettings | None) -> dict[str, Any] | None:
    if swap is None:
        return None

    def leg(x: SwapLeg | None) -> dict[str, str] | None:
        return None if x is None else {"swapSize": format_decimal(x.size), "assetId": str(x.asset_id)}

    return {
        "type": swap.type.value,
        "shortPositionSettings": leg(swap.short),
        "longPositionSettings": leg(swap.long),
    }


def _swap_from_json(value: Mapping[str, Any] | None) -> SwapSettings | None:
    if value is None:
        return None

    def leg(x: Mapping[str, str] | None) -> SwapLeg | None:
        return None if x is None else SwapLeg(Decimal(x["swapSize"]), AssetId(x["assetId"]))

    return SwapSettings(
        SwapType(value["type"]),
        leg(value.get("shortPositionSettings")),
        leg(value.get("longPositionSettings")),
    )


def _market_values(m: Market) -> dict[str, Any]:
    return {
        "base_asset_id": str(m.base_asset),
        "quote_asset_id": str(m.quote_asset),
        "display_name": m.display_name,
        "full_name": m.full_name,
        "type": m.type.value,
        "subtype": m.subtype,
        "price_scale": m.price_scale,
        "amount_scale": m.amount_scale,
        "tick_size": m.tick_size,
        "lot_step": m.lot_step,
        "min_amount": m.min_amount,
        "max_base_amount": m.max_base_amount,
        "min_quote_amount": m.min_quote_amount,
        "price_deviation": m.price_deviation,
        "slippage_rate": m.slippage_rate,
        "status": m.status.value,
        "is_otc": m.is_otc,
        "is_hidden": m.is_hidden,
        "calendar": None if m.calendar is None else calendar_to_json(m.calendar),
        "market_group_id": m.market_group_id,
        "calendar_id": m.calendar_id,
        "is_synchronized": m.is_synchronized,
        "external_ttl": m.external_ttl,
        "internal_ttl": m.internal_ttl,
        "trading_session_ids": list(m.trading_session_ids),
        "market_data_session_ids": list(m.market_data_session_ids),
        "lot_size": m.lot_size,
        "min_lot_amount": m.min_lot_amount,
        "max_lot_amount": m.max_lot_amount,
        "swap_settings": _swap_to_json(m.swap_settings),
        "max_leverage": m.max_leverage,
        "is_const_leverage": m.is_const_leverage,
        "funding_start_time": m.funding_start_time,
        "funding_interval_in_hours": m.funding_interval_in_hours,
        "updated_at": m.updated_at,
    }


def _market(row: Any) -> Market:
    r = row._mapping
    return Market(
        id=r["market_id"],
        base_asset=AssetId(r["base_asset_id"]),
        quote_asset=AssetId(r["quote_asset_id"]),
        display_name=r["display_name"],
        full_name=r["full_name"],
        type=MarketType(r["type"]),
        subtype=r["subtype"],
        price_scale=r["price_scale"],
        amount_scale=r["amount_scale"],
        tick_size=r["tick_size"].normalize(),
        lot_step=r["lot_step"].normalize(),
        min_amount=r["min_amount"].normalize(),
        max_base_amount=_norm(r["max_base_amount"]),
        min_quote_amount=_norm(r["min_quote_amount"]),
        price_deviation=r["price_deviation"].normalize(),
        slippage_rate=r["slippage_rate"].normalize(),
        status=MarketStatus(r["status"]),
        is_otc=r["is_otc"],
        is_hidden=r["is_hidden"],
        calendar=None if r["calendar"] is None else calendar_from_json(r["calendar"]),
        market_group_id=r["market_group_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        calendar_id=r["calendar_id"],
        is_synchronized=r["is_synchronized"],
        external_ttl=r["external_ttl"],
        internal_ttl=r["internal_ttl"],
        trading_session_ids=tuple(r["trading_session_ids"]),
        market_data_session_ids=tuple(r["market_data_session_ids"]),
        lot_size=r["lot_size"],
        min_lot_amount=_norm(r["min_lot_amount"]),
        max_lot_amount=r["max_lot_amount"],
        swap_settings=_swap_from_json(r["swap_settings"]),
        max_leverage=r["max_leverage"],
        is_const_leverage=r["is_const_leverage"],
        funding_start_time=r["funding_start_time"],
        funding_interval_in_hours=r["funding_interval_in_hours"],
    )


_SORT_COLUMNS = {
    MarketSortField.MARKET_ID: mt.markets.c.market_id,
    MarketSortField.DISPLAY_NAME: mt.markets.c.display_name,
    MarketSortField.FULL_NAME: mt.markets.c.full_name,
    MarketSortField.BASE_ASSET_ID: mt.markets.c.base_asset_id,
    MarketSortField.QUOTE_ASSET_ID: mt.markets.c.quote_asset_id,
    MarketSortField.TYPE: mt.markets.c.type,
    MarketSortField.SUBTYPE: mt.markets.c.subtype,
    MarketSortField.STATUS: mt.markets.c.status,
    MarketSortField.MARKET_GROUP_ID: mt.markets.c.market_group_id,
    MarketSortField.CALENDAR_ID: mt.markets.c.calendar_id,
    MarketSortField.CREATED_AT: mt.markets.c.created_at,
    MarketSortField.UPDATED_AT: mt.markets.c.updated_at,
}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(q: MarketQuery) -> list[ColumnElement[bool]]:
    c = mt.markets.c
    where: list[ColumnElement[bool]] = []
    for column, values in (
        (c.market_id, q.market_ids),
        (c.type, tuple(v.value for v in q.types)),
        (c.subtype, q.subtypes),
        (c.display_name, q.display_names),
        (c.full_name, q.full_names),
        (c.calendar_id, q.calendar_ids),
        (c.market_group_id, q.market_group_ids),
        (c.base_asset_id, q.base_asset_ids),
        (c.quote_asset_id, q.quote_asset_ids),
        (c.status, tuple(v.value for v in q.statuses)),
    ):
        if values:
            where.append(column.in_(list(values)))
    if q.exclude_market_group_ids:
        # Markets without a group are never excluded (NOT IN alone would drop them: NULL).
        where.append(
            or_(c.market_group_id.is_(None), not_(c.market_group_id.in_(list(q.exclude_market_group_ids))))
        )
    if q.id_contains:
        where.append(c.market_id.ilike(f"%{_like_escape(q.id_contains)}%", escape="\\"))
    if not q.include_hidden:
        where.append(c.is_hidden.is_(False))
    for ids, names, status in (
        (c.trading_session_ids, q.trading_session_names, q.trading_session_status),
        (c.market_data_session_ids, q.market_data_session_names, q.market_data_session_status),
    ):
        if names:
            where.append(ids.overlap(cast(list(names), ARRAY(Text))))
        if status is SessionStatus.ACTIVE:
            where.append(false())
        elif status is SessionStatus.INACTIVE:
            where.append(func.cardinality(ids) > 0)
    return where


class SqlMarketRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, market: Market) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    insert(mt.markets).values(
                        market_id=market.id, created_at=market.created_at, **_market_values(market)
                    )
                )
        except DBAPIError as e:
            if _sqlstate(e) == "23505":
                raise Conflict(f"market {market.id} exists", field="marketId") from e
            if _sqlstate(e) == "23503":
                raise NotFound("unknown asset", field="baseAssetId") from e
            raise

    async def update(self, market: Market) -> None:
        m = mt.markets
        result = await self._c.execute(
            update(m).where(m.c.market_id == market.id).values(**_market_values(market))
        )
        if result.rowcount != 1:
            raise NotFound(f"market {market.id} not found", field="marketId")

    async def get(self, market_id: str, *, for_update: bool = False) -> Market | None:
        stmt = select(mt.markets).where(mt.markets.c.market_id == market_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return _market(row) if row else None

    async def list(self, query: MarketQuery | None = None) -> builtins.list[Market]:
        q = query or MarketQuery()
        column = _SORT_COLUMNS[q.sort.field]
        desc = q.sort.direction is SortDirection.DESC
        order = [column.desc().nulls_last() if desc else column.asc().nulls_last()]
        if column is not mt.markets.c.market_id:
            order.append(mt.markets.c.market_id.desc() if desc else mt.markets.c.market_id.asc())
        stmt = select(mt.markets).where(and_(true(), *_conditions(q))).order_by(*order).offset(q.offset)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        return [_market(r) for r in await self._c.execute(stmt)]


# --- commission profiles ------------------------------------------------------------------------


def _cfd_to_json(cfd: CfdFee | None) -> dict[str, Any] | None:
    if cfd is None:
        return None
    return {"assetId": cfd.asset_id, "type": cfd.type.value, "size": format_decimal(cfd.size)}


def _cfd_from_json(value: Mapping[str, Any] | None) -> CfdFee | None:
    if value is None:
        return None
    asset = value.get("assetId")
    return CfdFee(AssetId(asset) if asset else None, FeeType(value["type"]), Decimal(value["size"]))


def _rule(row: Any) -> CommissionRule:
    r = row._mapping
    return CommissionRule(
        id=r["id"],
        profile_id=r["profile_id"],
        priority=r["priority"],
        is_default=r["is_default"],
        market_id=r["market_id"],
        market_group_id=r["market_group_id"],
        fee_type=FeeType(r["fee_type"]),
        maker_size=r["maker_size"].normalize(),
        taker_size=r["taker_size"].normalize(),
        min_fee_rat=_norm(r["min_fee_rat"]),
        cfd=_cfd_from_json(r["cfd_settings"]),
    )


def _rule_values(rule: CommissionRule) -> dict[str, Any]:
    return {
        "priority": rule.priority,
        "is_default": rule.is_default,
        "market_id": rule.market_id,
        "market_group_id": rule.market_group_id,
        "fee_type": rule.fee_type.value,
        "maker_size": rule.maker_size,
        "taker_size": rule.taker_size,
        "min_fee_rat": rule.min_fee_rat,
        "cfd_settings": _cfd_to_json(rule.cfd),
    }


def _rule_error(e: DBAPIError) -> Exception | None:
    state, constraint = _sqlstate(e), _constraint(e)
    if state == "23505" and constraint == "uq_commission_rules_profile_market":
        return Conflict("the profile already has a rule for this market", field="marketId")
    if state == "23505" and constraint == "uq_commission_rules_profile_group":
        return Conflict("the profile already has a rule for this market group", field="marketGroupId")
    if state == "23505" and constraint == "uq_commission_rules_one_default":
        return Conflict("the profile already has a default rule", field="isDefault")
    if state == "23505" and constraint == "uq_commission_rules_profile_id_priority":
        return Conflict("two rules of the profile would share a priority", field="priority")
    if state == "23505":
        return Conflict("the rule id exists", field="commissionProfileRuleId")
    if state == "23503" and "market" in constraint:
        return NotFound("unknown market", field="marketId")
    if state == "22003":
        return InvalidInput("a fee size is out of range", field="feeSettings")
    return None


_ORDER = (mt.commission_rules.c.priority, mt.commission_rules.c.id)


class SqlCommissionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _write(self, stmt: Any) -> Any:
        try:
            async with self._c.begin_nested():
                return await self._c.execute(stmt)
        except DBAPIError as e:
            error = _rule_error(e)
            if error is not None:
                raise error from e
            raise

    async def add_profile(self, profile: CommissionProfile) -> None:
        try:
            async with self._c.begin_nested():
                await self._c.execute(
                    insert(mt.commission_profiles).values(
                        id=profile.id, name=profile.name, created_at=func.now()
                    )
                )
        except DBAPIError as e:
            if _sqlstate(e) == "23505":
                raise Conflict(f"commission profile {profile.id} exists", field="commissionProfileId") from e
            raise

    async def get_profile(self, profile_id: str, *, for_update: bool = False) -> CommissionProfile | None:
        p = mt.commission_profiles
        stmt = select(p.c.id, p.c.name).where(p.c.id == profile_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._c.execute(stmt)).first()
        return CommissionProfile(row.id, row.name) if row else None

    async def list_profiles(self) -> builtins.list[CommissionProfile]:
        p = mt.commission_profiles
        rows = await self._c.execute(select(p.c.id, p.c.name).order_by(p.c.id))
        return [CommissionProfile(r.id, r.name) for r in rows]

    async def rules(self, profile_id: str) -> builtins.list[CommissionRule]:
        r = mt.commission_rules
        rows = await self._c.execute(select(r).where(r.c.profile_id == profile_id).order_by(*_ORDER))
        return [_rule(row) for row in rows]

    async def add_rule(self, rule: CommissionRule) -> None:
        now = func.now()
        await self._write(
            insert(mt.commission_rules).values(
                id=rule.id, profile_id=rule.profile_id, created_at=now, updated_at=now, **_rule_values(rule)
            )
        )

    async def update_rule(self, rule: CommissionRule) -> None:
        r = mt.commission_rules
        result = await self._write(
            update(r)
            .where(and_(r.c.id == rule.id, r.c.profile_id == rule.profile_id))
            .values(updated_at=func.now(), **_rule_values(rule))
        )
        if result.rowcount != 1:
            raise NotFound(f"commission rule {rule.id} not found", field="commissionProfileRuleId")

    async def delete_rule(self, profile_id: str, rule_id: str) -> bool:
        r = mt.commission_rules
        result = await self._c.execute(delete(r).where(and_(r.c.id == rule_id, r.c.profile_id == profile_id)))
        return bool(result.rowcount == 1)

    async def set_priorities(self, profile_id: str, priorities: Mapping[str, int]) -> None:
        r = mt.commission_rules
        for rule_id, priority in priorities.items():
            result = await self._write(
                update(r)
                .where(and_(r.c.id == rule_id, r.c.profile_id == profile_id))
                .values(priority=priority, updated_at=func.now())
            )
            if result.rowcount != 1:
                raise NotFound(f"commission rule {rule_id} not found", field="commissionProfileRuleId")
        # Check the deferred uniqueness now, where its failure can be told apart (not at commit).
        await self._write(text("SET CONSTRAINTS uq_commission_rules_profile_id_priority IMMEDIATE"))
        await self._c.execute(text("SET CONSTRAINTS uq_commission_rules_profile_id_priority DEFERRED"))

    async def rules_for_account(self, account_id: AccountId) -> builtins.list[CommissionRule] | None:
        r, a = mt.commission_rules, t.accounts
        rows = (
            await self._c.execute(
                select(a.c.account_id, r)
                .select_from(a.outerjoin(r, r.c.profile_id == a.c.commission_profile_id))
                .where(a.c.account_id == str(account_id))
                .order_by(*_ORDER)
            )
        ).all()
        if not rows:
            return None
        return [_rule(row) for row in rows if row.id is not None]

    async def rules_for_accounts(
        self, account_ids: Sequence[AccountId]
    ) -> dict[AccountId, builtins.list[CommissionRule]]:
        if not account_ids:
            return {}
        r, a = mt.commission_rules, t.accounts
        rows = await self._c.execute(
            select(a.c.account_id, r)
            .select_from(a.outerjoin(r, r.c.profile_id == a.c.commission_profile_id))
            .where(a.c.account_id.in_([str(i) for i in account_ids]))
            .order_by(a.c.account_id, *_ORDER)
        )
        out: dict[AccountId, builtins.list[CommissionRule]] = {}
        for row in rows:
            rules = out.setdefault(AccountId(row.account_id), [])
            if row.id is not None:
                rules.append(_rule(row))
        return out

    async def profile_of_account(self, account_id: AccountId) -> str | None:
        a = t.accounts
        row = (
            await self._c.execute(select(a.c.commission_profile_id).where(a.c.account_id == str(account_id)))
        ).first()
        return None if row is None else str(row[0])

    async def set_account_profile(self, account_id: AccountId, profile_id: str) -> bool:
        a = t.accounts
        result = await self._c.execute(
            update(a).where(a.c.account_id == str(account_id)).values(commission_profile_id=profile_id)
        )
        return bool(result.rowcount == 1)
