"""Markets file import and export (brokerage-platform.md, back office):
``POST /markets/file`` (multipart upload), ``GET /markets/file/{id}`` (its progress),
``GET /markets/download`` (start an export); bourse extensions
``GET /markets/download/{id}`` (its state) and ``GET /markets/download/{id}/file``.

Both directions run as background jobs (service/market_files.py); the spec's
``{"id", "status": "InProcess"}`` answers the request that starts one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from bourse.api.common.auth import Meta, Services, require
from bourse.domain.errors import InvalidInput
from bourse.domain.identity import Operation, Principal
from bourse.domain.market_files import MAX_FILE_BYTES, FileFormat, FileKind, MarketFile

router = APIRouter(prefix="/back-api/backoffice/v2", tags=["brokerage: markets files"])

ManageMarkets = Annotated[Principal, Depends(require(Operation.MANAGE_MARKETS))]

# The file plus the multipart framing around it.
MAX_BODY_BYTES = MAX_FILE_BYTES + 64 * 1024


def started(file: MarketFile) -> dict[str, str]:
    return {"id": file.id, "status": file.status.value}


def import_view(file: MarketFile) -> dict[str, Any]:
    """The spec's {status, created, updated, errors, incorrectRows}; the rest are bourse extensions."""
    return {
        "status": file.status.value,
        "created": file.created,
        "updated": file.updated,
        "errors": len(file.incorrect_rows),
        "incorrectRows": file.incorrect_rows,
        "id": file.id,
        "fileName": file.file_name,
        "format": file.format.value,
        "unchanged": file.unchanged,
        "rowErrors": [{"row": e.row, "field": e.field, "message": e.message} for e in file.row_errors],
        "error": file.error,
    }


def export_view(file: MarketFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "status": file.status.value,
        "fileName": file.file_name,
        "format": file.format.value,
        "error": file.error,
    }


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"the file is larger than {MAX_FILE_BYTES} bytes", field="file")
        yield chunk


async def _read_upload(request: Request) -> tuple[str | None, bytes]:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data, in a part named file", field="file")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_FILE_BYTES} bytes", field="file")
    parser = MultiPartParser(request.headers, _capped(request, MAX_BODY_BYTES), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise InvalidInput(f"the multipart body cannot be read: {e.message}", field="file") from e
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("a part named file holding the file is required", field="file")
        return upload.filename, await upload.read()
    finally:
        await form.close()


@router.post("/markets/file")
async def upload_markets(
    request: Request, services: Services, principal: ManageMarkets, meta: Meta
) -> dict[str, str]:
    name, content = await _read_upload(request)
    return started(await services.market_files.upload(principal, name, content, meta))


@router.get("/markets/file/{file_id}")
async def import_status(file_id: str, services: Services, principal: ManageMarkets) -> dict[str, Any]:
    return import_view(await services.market_files.status(principal, FileKind.IMPORT, file_id))


@router.get("/markets/download")
async def start_export(
    services: Services,
    principal: ManageMarkets,
    meta: Meta,
    format: Annotated[FileFormat, Query()] = FileFormat.CSV,
) -> dict[str, str]:
    return started(await services.market_files.request_export(principal, format, meta))


@router.get("/markets/download/{file_id}")
async def export_status(file_id: str, services: Services, principal: ManageMarkets) -> dict[str, Any]:
    return export_view(await services.market_files.status(principal, FileKind.EXPORT, file_id))


@router.get("/markets/download/{file_id}/file")
async def export_file(file_id: str, services: Services, principal: ManageMarkets) -> Response:
    file, content = await services.market_files.export_content(principal, file_id)
    return Response(
        content,
        media_type=file.format.media_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.file_name)}"},
    )
