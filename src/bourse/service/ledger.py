"""Assets and the ledger's consistency check; helpers every money-moving use case calls.

A use case that moves money does it inside its own unit of work::

    async with self._uow() as uow:
        tx_id = await post(uow, move(...), actor=..., subject=..., meta=meta)
        await uow.commit()

``post`` applies the transaction and appends the MONEY_MOVED audit entry in the
same unit of work, so the movement and its audit trail commit together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import InvalidInput, NotFound
from bourse.domain.ledger import MAX_SCALE, Asset, AssetType, LedgerCheckReport, LedgerTransaction
from bourse.domain.values import AssetId
from bourse.service.context import RequestMeta
from bourse.service.ports import UnitOfWork, UnitOfWorkFactory

_ASSET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


async def audit_money_moved(
    uow: UnitOfWork,
    tx_id: int,
    kind: str,
    *,
    actor: str,
    subject: str,
    meta: RequestMeta | None = None,
    **details: Any,
) -> None:
    """The audit entry for one ledger transaction (also for hold place/post/void)."""
    await uow.audit.append(_money_moved(actor, subject, meta, {"tx_id": tx_id, "kind": kind, **details}))


def _money_moved(actor: str, subject: str, meta: RequestMeta | None, details: dict[str, Any]) -> AuditEntry:
    meta = meta or RequestMeta()
    return AuditEntry(actor, AuditAction.MONEY_MOVED, subject, meta.request_id, meta.ip, details)


def _transaction_details(tx: LedgerTransaction) -> dict[str, Any]:
    """What a posted transaction's audit entry says of it, after its ``tx_id``."""
    return {"kind": tx.kind, "business_key": tx.business_key, "postings": _postings(tx)}


def _postings(tx: LedgerTransaction) -> list[dict[str, str]]:
    return [
        {"owner": p.owner, "asset": str(p.asset), "bucket": str(p.bucket), "amount": str(p.amount)}
        for p in tx.postings
    ]


async def post(
    uow: UnitOfWork, tx: LedgerTransaction, *, actor: str, subject: str, meta: RequestMeta | None = None
) -> int:
    """Apply ``tx`` and audit it, in the caller's unit of work; returns the ledger tx id."""
    tx_id = await uow.ledger.apply(tx)
    await uow.audit.append(_money_moved(actor, subject, meta, {"tx_id": tx_id, **_transaction_details(tx)}))
    return tx_id


async def post_for_rollback(
    uow: UnitOfWork, tx: LedgerTransaction, *, actor: str, subject: str, meta: RequestMeta | None = None
) -> int:
    """``post`` in one round trip and without a savepoint (``LedgerRepository.post_audited``), for a
    use case that rolls its whole unit of work back on any error and runs it again on a retryable
    Conflict. The same transaction and audit entry as ``post``."""
    return await uow.ledger.post_audited(tx, _money_moved(actor, subject, meta, _transaction_details(tx)))


async def post_many(
    uow: UnitOfWork,
    txs: Sequence[LedgerTransaction],
    *,
    actor: str,
    subject: str,
    meta: RequestMeta | None = None,
) -> list[int]:
    """``post`` for a batch: one set-based ledger write, one audit entry per transaction."""
    ids = await uow.ledger.apply_many(txs)
    for tx_id, tx in zip(ids, txs, strict=True):
        await uow.audit.append(
            _money_moved(actor, subject, meta, {"tx_id": tx_id, **_transaction_details(tx)})
        )
    return ids


def parse_asset_type(value: str) -> AssetType:
    for t in AssetType:
        if value.strip().lower() == t.value.lower():
            return t
    raise InvalidInput(f"type must be one of {', '.join(t.value for t in AssetType)}", field="type")


def _validated(asset_id: str, name: str, scale: int, type_: AssetType | str, source: str) -> Asset:
    if not isinstance(asset_id, str) or not _ASSET_ID.match(asset_id):
        raise InvalidInput("id must be 1-32 letters, digits, '.', '_' or '-'", field="id")
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise InvalidInput("name must have 1-128 characters", field="name")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= MAX_SCALE:
        raise InvalidInput(f"scale must be an integer from 0 to {MAX_SCALE}", field="scale")
    if not isinstance(source, str) or not source.strip() or len(source) > 64:
        raise InvalidInput("source must have 1-64 characters", field="source")
    kind = type_ if isinstance(type_, AssetType) else parse_asset_type(type_)
    return Asset(id=AssetId(asset_id), name=name.strip(), scale=scale, type=kind, source=source.strip())


class LedgerService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def create_asset(
        self, asset_id: str, name: str, scale: int, type: AssetType | str, source: str = "Internal"
    ) -> Asset:
        """Conflict if the id exists."""
        asset = _validated(asset_id, name, scale, type, source)
        async with self._uow() as uow:
            await uow.assets.add(asset)
            await uow.commit()
        return asset

    async def update_asset(
        self,
        asset_id: str,
        *,
        name: str | None = None,
        scale: int | None = None,
        type: AssetType | str | None = None,
        source: str | None = None,
    ) -> Asset:
        """Change the given fields; NotFound if there is no such asset."""
        async with self._uow() as uow:
            current = await uow.assets.get(AssetId(asset_id))
            if current is None:
                raise NotFound(f"asset {asset_id} not found", field="id")
            asset = _validated(
                asset_id,
                current.name if name is None else name,
                current.scale if scale is None else scale,
                current.type if type is None else type,
                current.source if source is None else source,
            )
            await uow.assets.update(asset)
            await uow.commit()
        return asset

    async def list_assets(self) -> list[Asset]:
        async with self._uow() as uow:
            return await uow.assets.list()

    async def get_asset(self, asset_id: str) -> Asset:
        async with self._uow() as uow:
            asset = await uow.assets.get(AssetId(asset_id))
        if asset is None:
            raise NotFound(f"asset {asset_id} not found", field="id")
        return asset

    async def check(self) -> LedgerCheckReport:
        """Recompute every balance from the postings and every transaction's per-asset sum."""
        async with self._uow() as uow:
            return await uow.ledger.check()
