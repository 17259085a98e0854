"""Reports, report templates and charts (brokerage-platform.md), mounted at ``/api``.

Shapes here, rules in ``domain/reports.py`` and ``service/reports.py``. Bodies are read with JSON
numbers as Decimal and answered exactly (``ExactJSONResponse``), so a filter's value comes back as
it was given. The template routes are declared before ``/reports/{reportId}``: "templates" is
never taken for a report id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from bourse.api.common.auth import Services, require
from bourse.api.common.exact_json import ExactJSONResponse, read_exact_json
from bourse.domain.identity import Operation, Principal
from bourse.domain.reports import report_json, template_json

router = APIRouter(prefix="/api", tags=["brokerage: reports"], default_response_class=ExactJSONResponse)

Viewer = Annotated[Principal, Depends(require(Operation.VIEW_REPORTS))]
Manager = Annotated[Principal, Depends(require(Operation.MANAGE_REPORTS))]
Charts = Annotated[Principal, Depends(require(Operation.MANAGE_CHARTS))]


@router.post("/reports")
async def create_report(request: Request, principal: Manager, services: Services) -> Any:
    report = await services.reports.create(principal, await read_exact_json(request))
    return ExactJSONResponse({"id": report.id})


@router.get("/reports")
async def list_reports(
    principal: Viewer, services: Services, limit: str | None = None, offset: str | None = None
) -> Any:
    reports = await services.reports.list_reports(principal, limit, offset)
    return ExactJSONResponse({"data": [report_json(r) for r in reports]})


@router.get("/reports/templates")
async def list_templates(principal: Viewer, services: Services) -> Any:
    templates = await services.reports.list_templates(principal)
    return ExactJSONResponse({"data": [template_json(t) for t in templates]})


@router.post("/reports/templates")
async def create_template(request: Request, principal: Manager, services: Services) -> Any:
    template = await services.reports.create_template(principal, await read_exact_json(request))
    return ExactJSONResponse({"id": template.id})


@router.get("/reports/templates/{templateId}")
async def get_template(templateId: str, principal: Viewer, services: Services) -> Any:
    return ExactJSONResponse(template_json(await services.reports.get_template(principal, templateId)))


@router.put("/reports/templates/{templateId}", status_code=204, response_class=Response)
async def update_template(
    templateId: str, request: Request, principal: Manager, services: Services
) -> Response:
    await services.reports.update_template(principal, templateId, await read_exact_json(request))
    return Response(status_code=204)


@router.delete("/reports/templates/{templateId}", status_code=204, response_class=Response)
async def delete_template(templateId: str, principal: Manager, services: Services) -> Response:
    await services.reports.delete_template(principal, templateId)
    return Response(status_code=204)


@router.post("/reports/templates/{templateId}/run")
async def run_template(templateId: str, principal: Manager, services: Services) -> Any:
    report = await services.reports.run_template(principal, templateId)
    return ExactJSONResponse({"reportId": report.id})


@router.get("/reports/{reportId}")
async def get_report(reportId: str, principal: Viewer, services: Services) -> Any:
    return ExactJSONResponse(report_json(await services.reports.get(principal, reportId)))


@router.delete("/reports/{reportId}", status_code=204, response_class=Response)
async def delete_report(reportId: str, principal: Manager, services: Services) -> Response:
    await services.reports.delete(principal, reportId)
    return Response(status_code=204)


@router.get("/reports/{reportId}/download", response_class=FileResponse)
async def download_report(reportId: str, principal: Viewer, services: Services) -> FileResponse:
    download = await services.reports.download(principal, reportId)
    return FileResponse(download.path, media_type=download.media_type, filename=download.filename)


@router.post("/charting", response_class=Response)
async def chart(request: Request, principal: Charts, services: Services) -> Response:
    png = await services.charts.chart(principal, await read_exact_json(request))
    return Response(content=png, media_type="image/png")
