"""Who a caller is and what they may do: operations, roles and the principal."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from bourse.domain.errors import InvalidInput, PermissionDenied
from bourse.domain.values import AccountId, UserId


class Operation(StrEnum):
    """The brokerage spec's "Required operations"; every protected route names one."""

    TRADING_UI = "trading-ui"
    VIEW_ACTIVE_ACCOUNTS = "view-active-accounts"
    VIEW_BALANCES = "view-balances"
    VIEW_BILLING_INFO = "view-billing-info"
    MANAGE_CHARTS = "manage-charts"
    VIEW_COMMISSIONS = "view-commissions"
    VIEW_MARKUP_REVENUE = "view-markup-revenue"
    VIEW_ORDERS = "view-orders"
    MANAGE_REPORTS = "manage-reports"
    VIEW_REPORTS = "view-reports"
    VIEW_TRADES = "view-trades"
    VIEW_TRANSFERS = "view-transfers"
    MANAGE_TRANSFERS = "manage-transfers"
    VIEW_COMMON = "view-common"
    VIEW_COMMISSION_RULES = "view-commission-rules"
    MANAGE_COMMISSION_RULES = "manage-commission-rules"
    MANAGE_ASSETS = "manage-assets"
    MANAGE_MARKETS_CATEGORIES = "manage-markets-categories"
    MANAGE_MARKETS = "manage-markets"
    MANAGE_ACCOUNTS = "manage-accounts"


class Role(StrEnum):
    TRADER = "trader"
    ADMIN = "admin"
    OPERATOR = "operator"
    ACCOUNTANT = "accountant"
    SUPPORT = "support"


_O = Operation
ROLE_OPERATIONS: dict[Role, frozenset[Operation]] = {
    Role.TRADER: frozenset({_O.TRADING_UI}),
    Role.ADMIN: frozenset(Operation),
    # Runs the venue day to day: markets, assets, accounts and money in and out.
    Role.OPERATOR: frozenset(
        {
            _O.VIEW_COMMON,
            _O.VIEW_ACTIVE_ACCOUNTS,
            _O.VIEW_BALANCES,
            _O.VIEW_ORDERS,
            _O.VIEW_TRADES,
            _O.VIEW_TRANSFERS,
            _O.MANAGE_TRANSFERS,
            _O.MANAGE_ASSETS,
            _O.MANAGE_MARKETS,
            _O.MANAGE_MARKETS_CATEGORIES,
            _O.MANAGE_ACCOUNTS,
            _O.VIEW_COMMISSION_RULES,
            _O.MANAGE_CHARTS,
        }
    ),
    # Reads money: balances, fees, revenue, reports; moves nothing.
    Role.ACCOUNTANT: frozenset(
        {
            _O.VIEW_COMMON,
            _O.VIEW_ACTIVE_ACCOUNTS,
            _O.VIEW_BALANCES,
            _O.VIEW_BILLING_INFO,
            _O.VIEW_COMMISSIONS,
            _O.VIEW_MARKUP_REVENUE,
            _O.VIEW_ORDERS,
            _O.VIEW_TRADES,
            _O.VIEW_TRANSFERS,
            _O.VIEW_REPORTS,
            _O.MANAGE_REPORTS,
            _O.VIEW_COMMISSION_RULES,
            _O.MANAGE_CHARTS,
        }
    ),
    # Answers customers: sees their state, changes nothing.
    Role.SUPPORT: frozenset(
        {
            _O.VIEW_COMMON,
            _O.VIEW_ACTIVE_ACCOUNTS,
            _O.VIEW_BALANCES,
            _O.VIEW_ORDERS,
            _O.VIEW_TRADES,
            _O.VIEW_TRANSFERS,
        }
    ),
}


def operations_of(roles: frozenset[Role]) -> frozenset[Operation]:
    granted: set[Operation] = set()
    for role in roles:
        granted |= ROLE_OPERATIONS[role]
    return frozenset(granted)


def parse_role(name: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        raise InvalidInput(
            f"unknown role {name!r}; roles are {', '.join(r.value for r in Role)}", field="role"
        ) from None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated person, as resolved for one request."""

    uid: UserId
    username: str
    roles: frozenset[Role]
    token_id: str = ""
    operations: frozenset[Operation] = field(default=frozenset())

    @classmethod
    def of(cls, uid: UserId, username: str, roles: frozenset[Role], token_id: str = "") -> Principal:
        return cls(uid, username, roles, token_id, operations_of(roles))

    def can(self, operation: Operation) -> bool:
        return operation in self.operations

    def require(self, operation: Operation) -> None:
        if operation not in self.operations:
            raise PermissionDenied(f"operation {operation.value} is not granted", operation=operation.value)


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """A machine caller (ext-order products) authenticated by a service token."""

    token_id: int
    name: str
    scopes: frozenset[str]

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"service token lacks scope {scope}", scope=scope)


@dataclass(frozen=True, slots=True)
class User:
    uid: UserId
    username: str
    email: str | None
    phone: str | None
    group: str
    roles: frozenset[Role]
    default_account_id: AccountId
    totp_enabled: bool


USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+-]{3,64}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
PHONE_RE = re.compile(r"^\+?[0-9]{6,20}$")
SERVICE_SCOPES = frozenset({"ext-orders"})
MIN_PASSWORD_LENGTH = 8


def validate_new_user(username: str, password: str, email: str | None, phone: str | None) -> None:
    if not USERNAME_RE.match(username):
        raise InvalidInput("username must be 3-64 letters, digits or . _ @ + -", field="username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if email is not None and not EMAIL_RE.match(email):
        raise InvalidInput("email is not an address", field="email")
    if phone is not None and not PHONE_RE.match(phone):
        raise InvalidInput("phone must be digits with an optional leading +", field="phone")
