"""The audit trail: one append-only entry per security- or money-relevant act."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    USER_CREATED = "user.created"
    ROLE_GRANTED = "role.granted"
    ROLE_REVOKED = "role.revoked"
    TOTP_ENROLLED = "totp.enrolled"
    TOTP_ENABLED = "totp.enabled"
    TOTP_DISABLED = "totp.disabled"
    SERVICE_TOKEN_CREATED = "service_token.created"
    SERVICE_TOKEN_REVOKED = "service_token.revoked"
    APP_KEY_CREATED = "app_key.created"
    APP_KEY_REVOKED = "app_key.revoked"
    ACCOUNT_OPENED = "account.opened"
    MONEY_MOVED = "money.moved"
    MARKET_CREATED = "market.created"
    MARKET_UPDATED = "market.updated"
    COMMISSION_PROFILE_CREATED = "commission_profile.created"
    COMMISSION_PROFILE_ASSIGNED = "commission_profile.assigned"
    COMMISSION_RULES_CHANGED = "commission_rules.changed"
    MARKET_CATEGORIES_REPLACED = "market_categories.replaced"
    MARKET_FILE_UPLOADED = "market_file.uploaded"
    MARKET_EXPORT_REQUESTED = "market_export.requested"
    ACCOUNT_GROUP_CREATED = "account_group.created"
    ACCOUNT_GROUP_UPDATED = "account_group.updated"
    ACCOUNT_GROUP_ASSIGNED = "account_group.assigned"
    MERCHANT_CREATED = "merchant.created"
    MERCHANT_UPDATED = "merchant.updated"
    MERCHANT_USER_ASSIGNED = "merchant_user.assigned"
    MERCHANT_USER_UNASSIGNED = "merchant_user.unassigned"
    # Derivatives (service/derivatives.py): orders, position triggers, margin settings, deficits.
    DERIVATIVE_ORDER_PLACED = "derivative_order.placed"
    DERIVATIVE_ORDER_CANCELLED = "derivative_order.cancelled"
    POSITION_TRIGGERS_CHANGED = "position_triggers.changed"
    MARGIN_ASSET_SELECTED = "margin_asset.selected"
    MARGIN_ASSET_UNSELECTED = "margin_asset.unselected"
    MARGIN_RATIO_SET = "margin_ratio.set"
    DEFICIT_ABSORBED = "deficit.absorbed"
    # External venues (service/hedging.py); hedge settings changes are MARKET_UPDATED.
    VENUE_CREATED = "venue.created"
    VENUE_UPDATED = "venue.updated"
    VENUE_DELETED = "venue.deleted"
    # The trader's workspace and price alerts: each user's own, audited like every other change.
    UI_SETTINGS_CHANGED = "ui_settings.changed"
    LAYOUT_CREATED = "layout.created"
    LAYOUT_CHANGED = "layout.changed"
    LAYOUT_RENAMED = "layout.renamed"
    LAYOUT_DELETED = "layout.deleted"
    LAYOUTS_ORDERED = "layouts.ordered"
    PRICE_ALERT_CREATED = "price_alert.created"
    PRICE_ALERT_DELETED = "price_alert.deleted"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: AuditAction
    subject: str
    request_id: str | None = None
    ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
