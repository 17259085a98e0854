"""Roles grant brokerage operations; a principal may do exactly what its roles grant."""

from __future__ import annotations

import pytest

from bourse.domain.errors import InvalidInput, PermissionDenied
from bourse.domain.identity import (
    ROLE_OPERATIONS,
    Operation,
    Principal,
    Role,
    ServiceCaller,
    operations_of,
    parse_role,
    validate_new_user,
)
from bourse.domain.values import UserId

MANAGE = {op for op in Operation if op.value.startswith("manage-")}


def principal(*roles: Role) -> Principal:
    return Principal.of(UserId(100001), "alice", frozenset(roles), "jti-1")


def test_every_role_is_mapped() -> None:
    assert set(ROLE_OPERATIONS) == set(Role)
    assert {r.value for r in Role} == {"trader", "admin", "operator", "accountant", "support"}


def test_admin_may_do_everything() -> None:
    admin = principal(Role.ADMIN)
    for op in Operation:
        admin.require(op)


def test_trader_may_only_trade() -> None:
    trader = principal(Role.TRADER)
    trader.require(Operation.TRADING_UI)
    for op in set(Operation) - {Operation.TRADING_UI}:
        with pytest.raises(PermissionDenied) as info:
            trader.require(op)
        assert info.value.details == {"operation": op.value}


def test_support_reads_but_changes_nothing() -> None:
    support = principal(Role.SUPPORT)
    assert support.can(Operation.VIEW_BALANCES)
    assert not any(support.can(op) for op in MANAGE)


def test_accountant_reads_money_but_does_not_move_it() -> None:
    accountant = principal(Role.ACCOUNTANT)
    assert accountant.can(Operation.VIEW_MARKUP_REVENUE)
    assert not accountant.can(Operation.MANAGE_TRANSFERS)
    assert not accountant.can(Operation.MANAGE_ACCOUNTS)


def test_operator_manages_accounts_but_not_commission_rules() -> None:
    operator = principal(Role.OPERATOR)
    assert operator.can(Operation.MANAGE_ACCOUNTS)
    assert not operator.can(Operation.MANAGE_COMMISSION_RULES)


def test_roles_add_up() -> None:
    both = principal(Role.TRADER, Role.SUPPORT)
    assert both.operations == ROLE_OPERATIONS[Role.TRADER] | ROLE_OPERATIONS[Role.SUPPORT]
    assert operations_of(frozenset()) == frozenset()
    with pytest.raises(PermissionDenied):
        principal().require(Operation.TRADING_UI)


def test_parse_role() -> None:
    assert parse_role("operator") is Role.OPERATOR
    with pytest.raises(InvalidInput, match="unknown role 'root'") as info:
        parse_role("root")
    assert "trader" in info.value.message  # the message lists the valid roles


def test_service_caller_scopes() -> None:
    caller = ServiceCaller(1, "wallet", frozenset({"ext-orders"}))
    caller.require_scope("ext-orders")
    with pytest.raises(PermissionDenied):
        caller.require_scope("admin")


@pytest.mark.parametrize(
    ("username", "password", "email", "phone", "field"),
    [
        ("al", "long-enough", None, None, "username"),
        ("has space", "long-enough", None, None, "username"),
        ("x" * 65, "long-enough", None, None, "username"),
        ("alice", "short", None, None, "password"),
        ("alice", "long-enough", "not-an-address", None, "email"),
        ("alice", "long-enough", None, "12-34", "phone"),
        ("alice", "long-enough", None, "123", "phone"),
    ],
)
def test_new_user_rejections(
    username: str, password: str, email: str | None, phone: str | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_new_user(username, password, email, phone)
    assert info.value.details["field"] == field


def test_new_user_accepted() -> None:
    validate_new_user("alice.b-1@x", "12345678", "alice@example.com", "+4915112345678")
    validate_new_user("bob", "12345678", None, None)
