"""/auth: OAuth2 password login, logout, the caller's profile, TOTP enrolment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response
from pydantic import BaseModel, Field

from bourse.api.common.auth import AuthenticatedPrincipal, Meta, Services
from bourse.domain.identity import User, operations_of
from bourse.domain.values import UserId

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserOut(BaseModel):
    uid: int
    userId: str
    username: str
    email: str | None
    phone: str | None
    group: str
    roles: list[str]
    operations: list[str]
    accountId: str
    totpEnabled: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            uid=user.uid,
            userId=str(user.uid),
            username=user.username,
            email=user.email,
            phone=user.phone,
            group=user.group,
            roles=sorted(r.value for r in user.roles),
            operations=sorted(o.value for o in operations_of(user.roles)),
            accountId=user.default_account_id,
            totpEnabled=user.totp_enabled,
        )


class TotpEnrolOut(BaseModel):
    secret: str
    provisioningUri: str


class TotpCodeIn(BaseModel):
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


@router.post("/token", response_model=TokenOut)
async def token(
    services: Services,
    meta: Meta,
    username: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1024)],
    totp: Annotated[str | None, Form(max_length=16)] = None,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    issued = await services.identity.login(username, password, totp, meta)
    return TokenOut(
        access_token=issued.access_token, token_type=issued.token_type, expires_in=issued.expires_in
    )


@router.post("/logout", status_code=204, response_class=Response)
async def logout(services: Services, meta: Meta, principal: AuthenticatedPrincipal) -> Response:
    await services.identity.logout(principal, meta)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
async def me(services: Services, principal: AuthenticatedPrincipal) -> UserOut:
    return UserOut.of(await services.identity.get_user(principal, principal.uid))


@router.get("/users/{uid}", response_model=UserOut)
async def user(uid: int, services: Services, principal: AuthenticatedPrincipal) -> UserOut:
    """Another user's profile: only for yourself or a caller with manage-accounts (else 404)."""
    return UserOut.of(await services.identity.get_user(principal, UserId(uid)))


@router.post("/totp/enroll", response_model=TotpEnrolOut)
async def totp_enroll(services: Services, meta: Meta, principal: AuthenticatedPrincipal) -> TotpEnrolOut:
    enrolment = await services.identity.totp_enroll(principal, meta)
    return TotpEnrolOut(secret=enrolment.secret, provisioningUri=enrolment.provisioning_uri)


@router.post("/totp/confirm", status_code=204, response_class=Response)
async def totp_confirm(
    body: TotpCodeIn, services: Services, meta: Meta, principal: AuthenticatedPrincipal
) -> Response:
    await services.identity.totp_confirm(principal, body.code, meta)
    return Response(status_code=204)


@router.post("/totp/disable", status_code=204, response_class=Response)
async def totp_disable(
    body: TotpCodeIn, services: Services, meta: Meta, principal: AuthenticatedPrincipal
) -> Response:
    await services.identity.totp_disable(principal, body.code, meta)
    return Response(status_code=204)
