"""Markets file import and export, processed by a background job.

An upload is stored as sent and answered at once (``InProcess``); the job
(``process_next``, jobs/runner.py) claims the oldest pending file with a lease,
so two workers never process one file and a worker that dies leaves it to the
next once the lease ends. Each data row creates or updates one market through
``MarketService`` (its rules, its unit of work, its audit entry and bus event),
so a bad row is recorded with its number and reason and leaves nothing behind,
and the rows before and after it still apply.

Progress is saved every ``CHUNK`` rows; a file taken over from a dead worker
resumes at the last saved row (rows of the unsaved chunk are applied again: a
market created by the dead worker then counts as unchanged or updated). A file
claimed more than ``MAX_ATTEMPTS`` times fails.

Rows act as the uploader, with the roles the uploader holds when the job runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import BourseError, Conflict, InProgress, InvalidInput, NotFound
from bourse.domain.identity import Operation, Principal
from bourse.domain.market_files import (
    HEADER,
    MAX_ROWS,
    FileFormat,
    FileKind,
    FileStatus,
    MarketFile,
    Progress,
    RowError,
    detect_format,
    export_name,
    market_row,
    row_fields,
    split_sheet,
)
from bourse.domain.markets import Market, apply_fields, default_market_id
from bourse.service.context import RequestMeta
from bourse.service.markets import MarketService
from bourse.service.ports import ClaimedFile, Clock, SheetCodec, UnitOfWork, UnitOfWorkFactory

LEASE = timedelta(minutes=2)
CHUNK = 100
MAX_ATTEMPTS = 3
MAX_FILE_NAME = 200


def _file_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput("the id is not a UUID", field="id") from None


def _clean_name(name: str | None, fmt: FileFormat) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:MAX_FILE_NAME].strip()
    return base or f"markets{fmt.extension}"


class MarketFileService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, markets: MarketService, codec: SheetCodec
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._markets = markets
        self._codec = codec

    # --- requests -----------------------------------------------------------------------------

    async def upload(
        self, principal: Principal, file_name: str | None, content: bytes, meta: RequestMeta
    ) -> MarketFile:
        """Store an upload for the job; InvalidInput for an empty, too large or unknown kind of file."""
        principal.require(Operation.MANAGE_MARKETS)
        fmt = detect_format(file_name, content)
        file = self._new(principal, FileKind.IMPORT, fmt, _clean_name(file_name, fmt))
        async with self._uow() as uow:
            await uow.market_files.add(file, content, principal.uid, meta.request_id)
            await self._audit(uow, principal, AuditAction.MARKET_FILE_UPLOADED, file, meta, len(content))
            await uow.commit()
        return file

    async def request_export(self, principal: Principal, fmt: FileFormat, meta: RequestMeta) -> MarketFile:
        principal.require(Operation.MANAGE_MARKETS)
        file = self._new(principal, FileKind.EXPORT, fmt, export_name(fmt, self._clock.now()))
        async with self._uow() as uow:
            await uow.market_files.add(file, None, principal.uid, meta.request_id)
            await self._audit(uow, principal, AuditAction.MARKET_EXPORT_REQUESTED, file, meta, None)
            await uow.commit()
        return file

    async def status(self, principal: Principal, kind: FileKind, file_id: str) -> MarketFile:
        """An import's or an export's state; NotFound for an id of the other kind."""
        principal.require(Operation.MANAGE_MARKETS)
        key = _file_id(file_id)
        async with self._uow() as uow:
            file = await uow.market_files.get(key)
        if file is None or file.kind is not kind:
            raise NotFound(f"no market {kind.value.lower()} {file_id}", field="id")
        return file

    async def export_content(self, principal: Principal, file_id: str) -> tuple[MarketFile, bytes]:
        """A completed export's file; InProgress before, Conflict if it failed."""
        file = await self.status(principal, FileKind.EXPORT, file_id)
        if file.status is FileStatus.IN_PROCESS:
            raise InProgress("the export is still in process", field="id")
        if file.status is FileStatus.FAILED:
            raise Conflict(f"the export failed: {file.error}", field="id")
        async with self._uow() as uow:
            content = await uow.market_files.content(file.id)
        if content is None:
            raise NotFound(f"the file of export {file_id} is gone", field="id")
        return file, content

    def _new(self, principal: Principal, kind: FileKind, fmt: FileFormat, name: str) -> MarketFile:
        now = self._clock.now()
        return MarketFile(
            id=str(uuid.uuid4()),
            kind=kind,
            format=fmt,
            status=FileStatus.IN_PROCESS,
            file_name=name,
            requested_by=principal.username,
            created_at=now,
            updated_at=now,
        )

    async def _audit(
        self,
        uow: UnitOfWork,
        principal: Principal,
        action: AuditAction,
        file: MarketFile,
        meta: RequestMeta,
        size: int | None,
    ) -> None:
        details: dict[str, Any] = {"fileName": file.file_name, "format": file.format.value}
        if size is not None:
            details["bytes"] = size
        await uow.audit.append(
            AuditEntry(
                principal.username, action, f"market-file:{file.id}", meta.request_id, meta.ip, details
            )
        )

    # --- the job ------------------------------------------------------------------------------

    async def process_next(self) -> bool:
        """Claim and process one pending file; False when there was none."""
        token = uuid.uuid4().hex
        now = self._clock.now()
        async with self._uow() as uow:
            claimed = await uow.market_files.claim(now, now + LEASE, token)
            await uow.commit()
        if claimed is None:
            return False
        if claimed.attempts > MAX_ATTEMPTS:
            await self._finish(
                claimed,
                FileStatus.FAILED,
                claimed.progress,
                f"processing stopped unfinished {MAX_ATTEMPTS} times; the file was given up",
            )
        elif claimed.file.kind is FileKind.EXPORT:
            await self._export(claimed)
        else:
            await self._import(claimed)
        return True

    async def _export(self, claimed: ClaimedFile) -> None:
        markets = await self._markets.list()
        rows: list[Sequence[object]] = [list(HEADER), *(market_row(m) for m in markets)]
        content = await asyncio.to_thread(self._codec.write, claimed.file.format, rows)
        await self._finish(claimed, FileStatus.COMPLETED, Progress(), None, content=content)

    async def _import(self, claimed: ClaimedFile) -> None:
        progress = claimed.progress
        try:
            # +2: the header, and one row more than allowed to tell a file that has too many.
            sheet = await asyncio.to_thread(
                self._codec.read, claimed.file.format, claimed.content, MAX_ROWS + 2
            )
            header, rows = split_sheet(sheet)
        except InvalidInput as e:
            await self._finish(claimed, FileStatus.FAILED, progress, e.message)
            return
        principal = await self._uploader(claimed)
        if principal is None or not principal.can(Operation.MANAGE_MARKETS):
            await self._finish(
                claimed, FileStatus.FAILED, progress, "the uploader may no longer manage markets"
            )
            return
        meta = RequestMeta(request_id=claimed.request_id, ip=None)
        created, updated, unchanged = progress.created, progress.updated, progress.unchanged
        errors = list(progress.row_errors)
        position = progress.next_row
        while position < len(rows):
            for number, cells in rows[position : position + CHUNK]:
                try:
                    outcome = await self._apply_row(principal, header, cells, meta)
                except BourseError as e:
                    errors.append(RowError(number, _field(e), e.message))
                    continue
                created += outcome == "created"
                updated += outcome == "updated"
                unchanged += outcome == "unchanged"
            position = min(position + CHUNK, len(rows))
            progress = Progress(position, created, updated, unchanged, tuple(errors))
            if position < len(rows) and not await self._save(claimed, progress):
                return  # another worker took the file over
        await self._finish(claimed, FileStatus.COMPLETED, progress, None)

    async def _apply_row(
        self,
        principal: Principal,
        header: Sequence[str | None],
        cells: Sequence[object],
        meta: RequestMeta,
    ) -> str:
        fields = row_fields(header, cells)
        existing = await self._existing(fields)
        if existing is None:
            await self._markets.create(principal, fields, meta)
            return "created"
        changes = _changes(existing, fields)
        after = apply_fields(existing, changes, self._clock.now())
        if replace(after, updated_at=existing.updated_at) == existing:
            return "unchanged"
        await self._markets.update(principal, existing.id, changes, meta)
        return "updated"

    async def _existing(self, fields: Mapping[str, Any]) -> Market | None:
        market_id = fields.get("marketId")
        base, quote = fields.get("baseAssetId"), fields.get("quoteAssetId")
        if market_id is None and isinstance(base, str) and isinstance(quote, str):
            market_id = default_market_id(base, quote)
        if not isinstance(market_id, str):
            return None  # create says what is missing
        try:
            return await self._markets.get(market_id)
        except NotFound:
            return None

    async def _uploader(self, claimed: ClaimedFile) -> Principal | None:
        async with self._uow() as uow:
            user = await uow.users.get(claimed.requested_by_uid)
            if user is None or not user.is_active:
                return None
            roles = await uow.users.roles(user.uid)
        return Principal.of(user.uid, user.username, roles)

    async def _save(self, claimed: ClaimedFile, progress: Progress) -> bool:
        now = self._clock.now()
        async with self._uow() as uow:
            kept = await uow.market_files.save(claimed.file.id, claimed.token, progress, now + LEASE, now)
            await uow.commit()
        return kept

    async def _finish(
        self,
        claimed: ClaimedFile,
        status: FileStatus,
        progress: Progress,
        error: str | None,
        *,
        content: bytes | None = None,
    ) -> None:
        async with self._uow() as uow:
            await uow.market_files.finish(
                claimed.file.id, claimed.token, status, progress, error, self._clock.now(), content=content
            )
            await uow.commit()


def _field(error: BourseError) -> str | None:
    value = error.details.get("field")
    return None if value is None else str(value)


def _changes(existing: Market, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A row's fields as a PUT body: the fields a market never changes must repeat its own values."""
    changes = dict(fields)
    for name, current in (
        ("marketId", existing.id),
        ("baseAssetId", str(existing.base_asset)),
        ("quoteAssetId", str(existing.quote_asset)),
        ("type", existing.type.value),
    ):
        value = changes.pop(name, None)
        if value is not None and value != current:
            raise InvalidInput(f"{name} of market {existing.id} is {current} and cannot change", field=name)
    return changes
