"""Repositories for users, accounts, tokens, credentials and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bourse.adapters.db import tables as t
from bourse.domain.audit import AuditEntry
from bourse.domain.errors import Conflict
from bourse.domain.identity import Role
from bourse.domain.values import AccountId, UserId
from bourse.service.ports import (
    AccountRecord,
    AppKeyRecord,
    ServiceTokenRecord,
    TokenOwner,
    UserRecord,
)


def _user(row: object) -> UserRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return UserRecord(
        uid=UserId(m["uid"]),
        username=m["username"],
        email=m["email"],
        phone=m["phone"],
        group=m["group_name"],
        password_hash=m["password_hash"],
        totp_secret_enc=m["totp_secret_enc"],
        totp_enabled=m["totp_enabled"],
        totp_last_step=m["totp_last_step"],
        is_active=m["is_active"],
    )


def _account(row: object) -> AccountRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return AccountRecord(
        account_id=AccountId(m["account_id"]),
        uid=UserId(m["uid"]),
        name=m["name"],
        account_type=m["account_type"],
        is_default=m["is_default"],
        created_at=m["created_at"],
    )


# Built once: a select built per call cost its construction and cache key on every token
# resolution (each trader's token is resolved again every 1-2 s, ``PrincipalCache``).
_TOKEN_OWNER = select(
    t.users.c.uid,
    t.users.c.username,
    t.users.c.is_active,
    select(func.array_agg(t.user_roles.c.role))
    .where(t.user_roles.c.uid == t.users.c.uid)
    .scalar_subquery()
    .label("roles"),
    exists().where(t.revoked_tokens.c.jti == bindparam("jti")).label("revoked"),
).where(t.users.c.uid == bindparam("uid"))


_SECURITY_EPOCH = select(t.security_epoch.c.epoch).where(t.security_epoch.c.id == 1)


class SqlUserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(
        self, username: str, email: str | None, phone: str | None, password_hash: str, group: str
    ) -> UserId:
        stmt = (
            insert(t.users)
            .values(
                username=username, email=email, phone=phone, password_hash=password_hash, group_name=group
            )
            .returning(t.users.c.uid)
        )
        try:
            async with self._c.begin_nested():
                uid = (await self._c.execute(stmt)).scalar_one()
        except IntegrityError as e:
            field = next((f for f in ("username", "email", "phone") if f in str(e.orig)), "user")
            raise Conflict(f"{field} is already registered", field=field) from e
        return UserId(uid)

    async def get(self, uid: UserId) -> UserRecord | None:
        row = (await self._c.execute(select(t.users).where(t.users.c.uid == uid))).first()
        return _user(row) if row else None

    async def get_by_username(self, username: str) -> UserRecord | None:
        row = (await self._c.execute(select(t.users).where(t.users.c.username == username))).first()
        return _user(row) if row else None

    async def set_password_hash(self, uid: UserId, password_hash: str) -> None:
        await self._c.execute(update(t.users).where(t.users.c.uid == uid).values(password_hash=password_hash))

    async def set_totp(self, uid: UserId, secret_enc: str | None, enabled: bool) -> None:
        await self._c.execute(
            update(t.users)
            .where(t.users.c.uid == uid)
            .values(totp_secret_enc=secret_enc, totp_enabled=enabled)
        )

    async def use_totp_step(self, uid: UserId, step: int) -> bool:
        # One conditional UPDATE: two concurrent logins with one code cannot both pass.
        result = await self._c.execute(
            update(t.users)
            .where(and_(t.users.c.uid == uid, t.users.c.totp_last_step < step))
            .values(totp_last_step=step)
        )
        return result.rowcount == 1

    async def roles(self, uid: UserId) -> frozenset[Role]:
        rows = await self._c.execute(select(t.user_roles.c.role).where(t.user_roles.c.uid == uid))
        return frozenset(Role(r) for (r,) in rows)

    async def grant(self, uid: UserId, role: Role) -> bool:
        result = await self._c.execute(
            pg_insert(t.user_roles).values(uid=uid, role=role.value).on_conflict_do_nothing()
        )
        return result.rowcount == 1

    async def revoke_role(self, uid: UserId, role: Role) -> bool:
        result = await self._c.execute(
            delete(t.user_roles).where(and_(t.user_roles.c.uid == uid, t.user_roles.c.role == role.value))
        )
        return result.rowcount == 1

    async def ensure_group(self, name: str) -> None:
        await self._c.execute(pg_insert(t.user_groups).values(name=name).on_conflict_do_nothing())

    async def security_epoch(self) -> int:
        return int((await self._c.execute(_SECURITY_EPOCH)).scalar_one())

    async def token_owner(self, uid: UserId, jti: str) -> TokenOwner | None:
        # One round trip per authenticated request: user, roles and revocation together.
        row = (await self._c.execute(_TOKEN_OWNER, {"uid": uid, "jti": jti})).first()
        if row is None:
            return None
        return TokenOwner(
            uid=UserId(row.uid),
            username=row.username,
            roles=frozenset(Role(r) for r in (row.roles or [])),
            is_active=row.is_active,
            revoked=row.revoked,
        )


class SqlAccountRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(
        self, account_id: AccountId, uid: UserId, name: str, account_type: str, is_default: bool
    ) -> AccountRecord:
        row = (
            await self._c.execute(
                insert(t.accounts)
                .values(
                    account_id=account_id,
                    uid=uid,
                    name=name,
                    account_type=account_type,
                    is_default=is_default,
                )
                .returning(*t.accounts.c)
            )
        ).one()
        return _account(row)

    async def get(self, account_id: AccountId) -> AccountRecord | None:
        row = (await self._c.execute(select(t.accounts).where(t.accounts.c.account_id == account_id))).first()
        return _account(row) if row else None

    async def list_for_user(self, uid: UserId) -> list[AccountRecord]:
        rows = await self._c.execute(
            select(t.accounts)
            .where(t.accounts.c.uid == uid)
            .order_by(t.accounts.c.created_at, t.accounts.c.account_id)
        )
        return [_account(r) for r in rows]

    async def default_for_user(self, uid: UserId) -> AccountRecord | None:
        row = (
            await self._c.execute(
                select(t.accounts).where(and_(t.accounts.c.uid == uid, t.accounts.c.is_default))
            )
        ).first()
        return _account(row) if row else None


class SqlRevokedTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def revoke(self, jti: str, uid: UserId, expires_at: datetime) -> None:
        await self._c.execute(
            pg_insert(t.revoked_tokens)
            .values(jti=jti, uid=uid, expires_at=expires_at)
            .on_conflict_do_nothing()
        )


class SqlLoginFailureRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def record(self, username: str, ip: str | None, at: datetime) -> None:
        await self._c.execute(insert(t.login_failures).values(username=username, ip=ip, at=at))

    async def nth_recent(
        self, username: str | None, ip: str | None, n: int, since: datetime
    ) -> datetime | None:
        lf = t.login_failures
        who = lf.c.username == username if username is not None else lf.c.ip == ip
        row = (
            await self._c.execute(
                select(lf.c.at)
                .where(and_(who, lf.c.at > since))
                .order_by(lf.c.at.desc())
                .offset(n - 1)
                .limit(1)
            )
        ).first()
        return row.at if row else None

    async def clear_user(self, username: str) -> None:
        await self._c.execute(delete(t.login_failures).where(t.login_failures.c.username == username))


class SqlServiceTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, name: str, token_hash: bytes, scopes: frozenset[str]) -> int:
        stmt = insert(t.service_tokens).values(name=name, token_hash=token_hash, scopes=sorted(scopes))
        return int((await self._c.execute(stmt.returning(t.service_tokens.c.id))).scalar_one())

    async def exists(self, name: str) -> bool:
        st = t.service_tokens
        stmt = select(exists().where(and_(st.c.name == name, st.c.revoked_at.is_(None))))
        return bool((await self._c.execute(stmt)).scalar_one())

    async def by_hash(self, token_hash: bytes) -> ServiceTokenRecord | None:
        st = t.service_tokens
        row = (await self._c.execute(select(st).where(st.c.token_hash == token_hash))).first()
        if row is None:
            return None
        return ServiceTokenRecord(row.id, row.name, frozenset(row.scopes), row.revoked_at is not None)

    async def revoke(self, name: str) -> bool:
        st = t.service_tokens
        result = await self._c.execute(
            update(st).where(and_(st.c.name == name, st.c.revoked_at.is_(None))).values(revoked_at=func.now())
        )
        return result.rowcount == 1


class SqlAppKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def add(self, app_key: str, company_id: str, secret_enc: str) -> None:
        await self._c.execute(
            insert(t.app_keys).values(app_key=app_key, company_id=company_id, secret_enc=secret_enc)
        )

    async def get(self, app_key: str) -> AppKeyRecord | None:
        row = (await self._c.execute(select(t.app_keys).where(t.app_keys.c.app_key == app_key))).first()
        if row is None:
            return None
        return AppKeyRecord(row.app_key, row.company_id, row.secret_enc, row.revoked_at is not None)

    async def revoke(self, app_key: str) -> bool:
        ak = t.app_keys
        result = await self._c.execute(
            update(ak)
            .where(and_(ak.c.app_key == app_key, ak.c.revoked_at.is_(None)))
            .values(revoked_at=func.now())
        )
        return result.rowcount == 1


class SqlAuditLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def append(self, entry: AuditEntry) -> None:
        await self._c.execute(
            insert(t.audit_log).values(
                actor=entry.actor,
                action=entry.action.value,
                subject=entry.subject,
                request_id=entry.request_id,
                ip=entry.ip,
                details=entry.details,
            )
        )
