"""Trading accounts and their balances, for the back office and for the account owner."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bourse.domain.account_groups import DEFAULT_GROUP_ID
from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.history import Rates, rates_to_root
from bourse.domain.identity import Principal
from bourse.domain.ledger import Bucket, account_owner
from bourse.domain.values import AccountId, AssetId, UserId
from bourse.service.context import RequestMeta
from bourse.service.identity import new_account_id
from bourse.service.ports import AccountRecord, UnitOfWork, UnitOfWorkFactory

ACCOUNT_TYPES = ("Hedging", "Netting")

# Stakes escrowed by ext-order products and the margin held by open derivative
# positions are still the user's money, held for a purpose: the brokerage view
# counts them as locked. Bonus balances are not cash and are not shown here.
_LOCKED_BUCKETS = frozenset({Bucket.LOCKED.value, Bucket.STAKE.value, Bucket.MARGIN.value})
_CASH_BUCKETS = _LOCKED_BUCKETS | {Bucket.AVAILABLE.value}


@dataclass(frozen=True, slots=True)
class AssetBalance:
    asset_id: AssetId
    locked: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class AccountView:
    account: AccountRecord
    balances: list[AssetBalance]

    def total_of(self, asset_id: str) -> Decimal:
        return sum((b.total for b in self.balances if b.asset_id == asset_id), Decimal(0))

    def total_in(self, rates: Rates) -> Decimal:
        """Every balance valued in the root asset at the latest prices (the history server's
        conversion: direct or through one intermediate market). An asset that no traded market
        prices yet cannot be valued and counts as nothing: the total is a lower bound then."""
        total = Decimal(0)
        for b in self.balances:
            rate = rates.rate(b.asset_id)
            if rate is not None:
                total += b.total * rate
        return total


def parse_account_type(value: str | None) -> str:
    if value is None:
        return "Hedging"
    for known in ACCOUNT_TYPES:
        if value.strip().lower() == known.lower():
            return known
    raise InvalidInput(f"accountType must be one of {', '.join(ACCOUNT_TYPES)}", field="accountType")


async def account_balances(uow: UnitOfWork, account_id: AccountId) -> list[AssetBalance]:
    per_asset: dict[AssetId, tuple[Decimal, Decimal]] = {}
    for balance in await uow.ledger.balances(account_owner(account_id)):
        if str(balance.bucket) not in _CASH_BUCKETS:
            continue
        locked, total = per_asset.get(balance.asset, (Decimal(0), Decimal(0)))
        if str(balance.bucket) in _LOCKED_BUCKETS:
            locked += balance.amount
        per_asset[balance.asset] = (locked, total + balance.amount)
    return [AssetBalance(asset, locked, total) for asset, (locked, total) in sorted(per_asset.items())]


class AccountService:
    def __init__(self, uow: UnitOfWorkFactory, root_asset: str) -> None:
        self._uow = uow
        self.root_asset = root_asset

    async def user_accounts(self, uid: UserId) -> list[AccountView]:
        """Every account of a user, for staff (the route requires the operation)."""
        async with self._uow() as uow:
            if await uow.users.get(uid) is None:
                raise NotFound(f"user {uid} not found", field="userId")
            return [
                AccountView(a, await account_balances(uow, a.account_id))
                for a in await uow.accounts.list_for_user(uid)
            ]

    async def user_account(self, uid: UserId, account_id: str) -> AccountView:
        async with self._uow() as uow:
            account = await uow.accounts.get(AccountId(account_id))
            # An account of another user is "not found" under this user, never shown.
            if account is None or account.uid != uid:
                raise NotFound(f"account {account_id} not found for user {uid}", field="accountId")
            return AccountView(account, await account_balances(uow, account.account_id))

    async def open_account(
        self,
        principal: Principal,
        uid: UserId,
        name: str,
        account_type: str | None,
        account_group_id: str | None,
        meta: RequestMeta,
    ) -> AccountRecord:
        name = (name or "").strip()
        if not name or len(name) > 64:
            raise InvalidInput("accountName must have 1-64 characters", field="accountName")
        kind = parse_account_type(account_type)
        group_id = account_group_id or DEFAULT_GROUP_ID
        async with self._uow() as uow:
            if await uow.users.get(uid) is None:
                raise NotFound(f"user {uid} not found", field="userId")
            if await uow.account_groups.get(group_id) is None:
                raise NotFound(f"account group {group_id} not found", field="accountGroupId")
            account = await uow.accounts.add(new_account_id(), uid, name, kind, False)
            if group_id != DEFAULT_GROUP_ID:  # a new account is in the default group already
                await uow.account_groups.set_account_group(account.account_id, group_id)
            await uow.audit.append(
                AuditEntry(
                    principal.username,
                    AuditAction.ACCOUNT_OPENED,
                    f"account:{account.account_id}",
                    meta.request_id,
                    meta.ip,
                    {"uid": uid, "accountType": kind, "accountGroupId": group_id},
                )
            )
            await uow.commit()
        return account

    async def my_accounts(self, principal: Principal) -> list[AccountView]:
        return await self.user_accounts(principal.uid)

    async def my_accounts_valued(self, principal: Principal) -> tuple[list[AccountView], Rates]:
        """The caller's accounts and the rates that value them in the root asset (one snapshot)."""
        async with self._uow() as uow:
            views = [
                AccountView(a, await account_balances(uow, a.account_id))
                for a in await uow.accounts.list_for_user(principal.uid)
            ]
            assets = {b.asset_id for v in views for b in v.balances}
            rates = rates_to_root(AssetId(self.root_asset), assets, await uow.history.last_prices())
        return views, rates

    async def owned_account(self, principal: Principal, account_id: str) -> AccountRecord:
        """The caller's own account (the brokerage ``accountId`` header); 404 for anyone else's."""
        async with self._uow() as uow:
            account = await uow.accounts.get(AccountId(account_id))
        if account is None or account.uid != principal.uid:
            raise NotFound(f"account {account_id} not found", field="accountId")
        return account
