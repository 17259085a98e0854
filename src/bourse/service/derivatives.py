"""CFD and perpetual trading for the front office (brokerage spec v4), and the entry points the
derivatives jobs call.

Every trader call names the account it acts on (the ``accountId`` header, else the caller's
default account where the spec has no header); an account, order or position of anyone else
is "not found". Orders on a Dealer market fill against the house at the price source's bid/ask
widened by the markup (PricingService); a Market order fills in the same transaction that
stores it, a Limit order rests until the dealer's price reaches it, a stop order waits for the
mark to reach its activation price. Nothing is held for a resting order: its margin and fee are
checked again when it fills.

One use case is one unit of work: the account's derivative lock, the positions (FOR UPDATE),
the ledger accounts (locked in id order), the ledger transaction, the rows and the audit entry
commit together. The maths is ``bourse.domain.positions``/``margin``/``triggers``.
"""

from __future__ import annotations

from bourse.service.derivatives_jobs import DerivativesJobs
from bourse.service.derivatives_orders import parse_id
from bourse.service.derivatives_views import (
    ClosedPositionView,
    MarginAssetView,
    MarginCheck,
    OrderPreview,
    OrderView,
    PositionTriggers,
    PositionView,
    PreviewRequest,
    TriggerSpec,
)

__all__ = [
    "ClosedPositionView",
    "DerivativesService",
    "MarginAssetView",
    "MarginCheck",
    "OrderPreview",
    "OrderView",
    "PositionTriggers",
    "PositionView",
    "PreviewRequest",
    "TriggerSpec",
    "parse_id",
]


# --- the service -------------------------------------------------------------------------------


class DerivativesService(DerivativesJobs):
    """The whole service, one part a module, each building on the one before (sharing ``self``):
    ``derivatives_base`` (state, the caller's account, prices and rules), ``derivatives_orders``,
    ``derivatives_positions``, ``derivatives_triggers`` and ``derivatives_margin`` (both over
    positions), ``derivatives_jobs``; what the use cases take and answer is ``derivatives_views``."""
