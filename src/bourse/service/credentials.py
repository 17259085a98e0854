"""Machine credentials: service tokens (ext-order callers) and merchant app keys.

Both are random and shown once. Service tokens are stored as a SHA-256 digest:
they carry 256 bits of entropy, so a slow hash adds nothing. App secrets are
stored encrypted, because the server needs them back to verify HMAC signs.

A service token's caller is remembered as a person's bearer token is (ADR 0003): an
external product sends the same token with every stake, and reading it back was a unit
of work of its own per request. A revoke made by this service drops every remembered
caller at once; one made elsewhere (the CLI, another server process) moves the security
epoch and acts within a second (``SecurityEpoch``). ``SERVICE_CALLER_TTL_SECONDS`` is
only a backstop.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from bourse.domain.identity import SERVICE_SCOPES, ServiceCaller
from bourse.service.context import RequestMeta
from bourse.service.ports import Clock, SecretCipher, UnitOfWorkFactory
from bourse.service.principal_cache import TokenCache
from bourse.service.security_epoch import SecurityEpoch

SERVICE_TOKEN_PREFIX = "bst_"
SERVICE_CALLER_TTL_SECONDS = 60.0
_MAX_CALLERS = 10_000


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _token_id(caller: ServiceCaller) -> int:
    return caller.token_id


@dataclass(frozen=True, slots=True)
class NewServiceToken:
    name: str
    token: str


@dataclass(frozen=True, slots=True)
class NewAppKey:
    app_key: str
    secret: str


class CredentialService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cipher: SecretCipher,
        clock: Clock,
        epoch: SecurityEpoch | None = None,
        caller_ttl: float = SERVICE_CALLER_TTL_SECONDS,
    ) -> None:
        self._uow = uow
        self._cipher = cipher
        self._clock = clock
        self._callers: TokenCache[bytes, ServiceCaller] = TokenCache(caller_ttl, _MAX_CALLERS, _token_id)
        self._epoch = epoch if epoch is not None else SecurityEpoch(uow)
        self._epoch.on_change(self._callers.forget_all)

    async def create_service_token(
        self,
        name: str,
        scopes: tuple[str, ...] = ("ext-orders",),
        meta: RequestMeta | None = None,
        actor: str = "admin",
    ) -> NewServiceToken:
        if not name or len(name) > 64:
            raise InvalidInput("name must have 1-64 characters", field="name")
        unknown = set(scopes) - SERVICE_SCOPES
        if unknown or not scopes:
            raise InvalidInput(f"scopes must be among {', '.join(sorted(SERVICE_SCOPES))}", field="scope")
        token = SERVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
        meta = meta or RequestMeta.cli()
        async with self._uow() as uow:
            if await uow.service_tokens.exists(name):
                raise Conflict(f"a service token named {name!r} exists", field="name")
            await uow.service_tokens.add(name, digest(token), frozenset(scopes))
            await uow.audit.append(
                AuditEntry(
                    actor,
                    AuditAction.SERVICE_TOKEN_CREATED,
                    f"service_token:{name}",
                    meta.request_id,
                    meta.ip,
                    {"scopes": sorted(scopes)},
                )
            )
            await uow.commit()
        return NewServiceToken(name, token)

    async def revoke_service_token(
        self, name: str, meta: RequestMeta | None = None, actor: str = "admin"
    ) -> None:
        meta = meta or RequestMeta.cli()
        async with self._uow() as uow:
            if not await uow.service_tokens.revoke(name):
                raise NotFound(f"no active service token named {name!r}")
            await uow.audit.append(
                AuditEntry(
                    actor,
                    AuditAction.SERVICE_TOKEN_REVOKED,
                    f"service_token:{name}",
                    meta.request_id,
                    meta.ip,
                )
            )
            await uow.commit()
        self._callers.forget_all()

    async def authenticate_service(self, token: str) -> ServiceCaller:
        if not token.startswith(SERVICE_TOKEN_PREFIX):
            raise NotAuthenticated("not a service token")
        key = digest(token)
        now = self._clock.now().timestamp()
        await self._epoch.check(now)
        cached = self._callers.get(key, now)
        if cached is not None:
            return cached
        generation = self._callers.generation
        async with self._uow() as uow:
            record = await uow.service_tokens.by_hash(key)
        if record is None or record.revoked:
            raise NotAuthenticated("unknown or revoked service token")
        caller = ServiceCaller(record.id, record.name, record.scopes)
        self._callers.put(key, caller, now, float("inf"), generation)
        return caller

    async def create_app_key(
        self, company_id: str, meta: RequestMeta | None = None, actor: str = "admin"
    ) -> NewAppKey:
        if not company_id or len(company_id) > 64:
            raise InvalidInput("company id must have 1-64 characters", field="companyId")
        app_key = secrets.token_hex(16)
        secret = secrets.token_hex(32)
        meta = meta or RequestMeta.cli()
        async with self._uow() as uow:
            await uow.app_keys.add(app_key, company_id, self._cipher.encrypt(secret))
            await uow.audit.append(
                AuditEntry(
                    actor,
                    AuditAction.APP_KEY_CREATED,
                    f"app_key:{app_key}",
                    meta.request_id,
                    meta.ip,
                    {"companyId": company_id},
                )
            )
            await uow.commit()
        return NewAppKey(app_key, secret)

    async def revoke_app_key(
        self, app_key: str, meta: RequestMeta | None = None, actor: str = "admin"
    ) -> None:
        meta = meta or RequestMeta.cli()
        async with self._uow() as uow:
            if not await uow.app_keys.revoke(app_key):
                raise NotFound(f"no active app key {app_key!r}")
            await uow.audit.append(
                AuditEntry(actor, AuditAction.APP_KEY_REVOKED, f"app_key:{app_key}", meta.request_id, meta.ip)
            )
            await uow.commit()

    async def app_secret(self, app_key: str) -> tuple[str, str]:
        """(company id, secret) of an active app key, for verifying a merchant's signature."""
        async with self._uow() as uow:
            record = await uow.app_keys.get(app_key)
        if record is None or record.revoked:
            raise NotAuthenticated("unknown or revoked app key")
        return record.company_id, self._cipher.decrypt(record.secret_enc)
