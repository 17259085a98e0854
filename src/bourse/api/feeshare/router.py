"""OTC fee sharing (otc-fee-sharing.md): the merchants' signed query at /platformapi/chainup/open,
and the back office's merchants at /back-api/backoffice/v2/merchants (backoffice.py).

Every response under the open prefix, errors included, is the spec's envelope (envelope.py).
Parameters are read from the query string only, as the spec lists them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from bourse.api.common.auth import Services
from bourse.api.common.errors import register_renderer
from bourse.api.common.exact_json import ExactJSONResponse
from bourse.api.feeshare import backoffice, envelope
from bourse.domain.errors import InvalidInput

PREFIXES = ("/platformapi/chainup/open",)
for _prefix in PREFIXES:
    register_renderer(_prefix, envelope.render_error)

open_router = APIRouter(prefix="/platformapi/chainup/open", tags=["feeshare"])


def _params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            # Which of two values was signed is ambiguous: refuse rather than pick one.
            raise InvalidInput(f"{name} is given more than once", field=name)
        params[name] = value
    return params


@open_router.post("/record/feeSharing_otc_detail", response_class=ExactJSONResponse)
async def fee_sharing_otc_detail(request: Request, services: Services) -> ExactJSONResponse:
    page = await services.feeshare.records(_params(request))
    return envelope.success(page.count, page.records)


router = APIRouter()
router.include_router(open_router)
router.include_router(backoffice.router)
