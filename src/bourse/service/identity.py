"""Identity use cases: users, login (password, TOTP, throttling), tokens, roles."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from bourse.domain.audit import AuditAction, AuditEntry
from bourse.domain.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from bourse.domain.identity import Operation, Principal, Role, User, parse_role, validate_new_user
from bourse.domain.values import AccountId, UserId
from bourse.service.context import RequestMeta
from bourse.service.ports import (
    AccountRecord,
    Clock,
    OneTimePasswords,
    PasswordHasher,
    SecretCipher,
    TokenCodec,
    UnitOfWork,
    UnitOfWorkFactory,
    UserRecord,
)
from bourse.service.principal_cache import PrincipalCache
from bourse.service.security_epoch import SecurityEpoch

DEFAULT_GROUP = "default"
DEFAULT_ACCOUNT_TYPE = "Hedging"


def new_account_id() -> AccountId:
    """Opaque and unguessable, so that ids leak nothing about other customers."""
    return AccountId("A" + secrets.token_hex(8).upper())


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures_per_user: int = 5
    max_failures_per_ip: int = 50
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True, slots=True)
class CreatedUser:
    user: User
    account: AccountRecord


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    provisioning_uri: str


class IdentityService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        cipher: SecretCipher,
        otp: OneTimePasswords,
        policy: LoginPolicy,
        principals: PrincipalCache | None = None,
        epoch: SecurityEpoch | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._hasher = hasher
        self._tokens = tokens
        self._cipher = cipher
        self._otp = otp
        self._policy = policy
        self._principals = principals if principals is not None else PrincipalCache()
        self._epoch = epoch if epoch is not None else SecurityEpoch(uow)
        self._epoch.on_change(self._principals.forget_all)
        # Verified against for unknown usernames, so both paths cost one argon2 verification.
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    # --- users -------------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        roles: tuple[Role, ...] = (Role.TRADER,),
        group: str = DEFAULT_GROUP,
        meta: RequestMeta | None = None,
        actor: str = "system",
    ) -> CreatedUser:
        validate_new_user(username, password, email, phone)
        password_hash = self._hasher.hash(password)
        async with self._uow() as uow:
            if await uow.users.get_by_username(username) is not None:
                raise Conflict(f"username {username!r} is taken", field="username")
            await uow.users.ensure_group(group)
            uid = await uow.users.add(username, email, phone, password_hash, group)
            for role in roles:
                await uow.users.grant(uid, role)
            account = await uow.accounts.add(new_account_id(), uid, "Main", DEFAULT_ACCOUNT_TYPE, True)
            await self._audit(
                uow,
                meta,
                actor,
                AuditAction.USER_CREATED,
                f"user:{uid}",
                username=username,
                roles=[r.value for r in roles],
                accountId=account.account_id,
            )
            await uow.commit()
            record = await self._require_user(uow, uid)
            user = await self._to_user(uow, record)
        return CreatedUser(user, account)

    async def grant(
        self, username: str, role_name: str, *, meta: RequestMeta | None = None, actor: str = "system"
    ) -> bool:
        role = parse_role(role_name)
        async with self._uow() as uow:
            record = await uow.users.get_by_username(username)
            if record is None:
                raise NotFound(f"no user {username!r}")
            added = await uow.users.grant(record.uid, role)
            if added:
                await self._audit(
                    uow, meta, actor, AuditAction.ROLE_GRANTED, f"user:{record.uid}", role=role.value
                )
            await uow.commit()
        self._principals.forget_user(record.uid)
        return added

    async def revoke_role(
        self, username: str, role_name: str, *, meta: RequestMeta | None = None, actor: str = "system"
    ) -> bool:
        role = parse_role(role_name)
        async with self._uow() as uow:
            record = await uow.users.get_by_username(username)
            if record is None:
                raise NotFound(f"no user {username!r}")
            removed = await uow.users.revoke_role(record.uid, role)
            if removed:
                await self._audit(
                    uow, meta, actor, AuditAction.ROLE_REVOKED, f"user:{record.uid}", role=role.value
                )
            await uow.commit()
        self._principals.forget_user(record.uid)
        return removed

    async def get_user(self, principal: Principal, uid: UserId) -> User:
        """A user's profile: their own, or anyone's for a caller who manages accounts."""
        if uid != principal.uid and not principal.can(Operation.MANAGE_ACCOUNTS):
            raise NotFound(f"no user {uid}")
        async with self._uow() as uow:
            record = await uow.users.get(uid)
            if record is None:
                raise NotFound(f"no user {uid}")
            return await self._to_user(uow, record)

    # --- login -------------------------------------------------------------------------------

    async def login(self, username: str, password: str, totp: str | None, meta: RequestMeta) -> IssuedToken:
        now = self._clock.now()
        async with self._uow() as uow:
            retry_after = await self._throttled_for(uow, username, meta.ip, now)
            if retry_after is not None:
                await self._audit(
                    uow, meta, username, AuditAction.LOGIN_FAILED, f"username:{username}", reason="throttled"
                )
                await uow.commit()
                raise TooManyRequests("too many failed logins; try again later", retry_after=retry_after)

            record = await uow.users.get_by_username(username)
            reason = await self._check_credentials(uow, record, password, totp, now)
            if reason is not None:
                await uow.login_failures.record(username, meta.ip, now)
                await self._audit(
                    uow, meta, username, AuditAction.LOGIN_FAILED, f"username:{username}", reason=reason
                )
                await uow.commit()
                raise NotAuthenticated(
                    "a valid TOTP code is required"
                    if reason.startswith("totp")
                    else "bad username or password"
                )
            assert record is not None
            if self._hasher.needs_rehash(record.password_hash):
                await uow.users.set_password_hash(record.uid, self._hasher.hash(password))
            await uow.login_failures.clear_user(username)
            jti = uuid.uuid4().hex
            token = self._tokens.issue(record.uid, jti, now)
            await self._audit(uow, meta, username, AuditAction.LOGIN, f"user:{record.uid}", jti=jti)
            await uow.commit()
        return IssuedToken(token, self._tokens.ttl_seconds)

    async def _throttled_for(
        self, uow: UnitOfWork, username: str, ip: str | None, now: datetime
    ) -> int | None:
        p = self._policy
        since = now - p.window
        unlock_at: datetime | None = None
        user_nth = await uow.login_failures.nth_recent(username, None, p.max_failures_per_user, since)
        if user_nth is not None:
            unlock_at = user_nth + p.window
        if ip is not None:
            ip_nth = await uow.login_failures.nth_recent(None, ip, p.max_failures_per_ip, since)
            if ip_nth is not None and (unlock_at is None or ip_nth + p.window > unlock_at):
                unlock_at = ip_nth + p.window
        if unlock_at is None:
            return None
        return max(1, int((unlock_at - now).total_seconds() + 0.999))

    async def _check_credentials(
        self, uow: UnitOfWork, record: UserRecord | None, password: str, totp: str | None, now: datetime
    ) -> str | None:
        """None when the credentials are good, else the reason for the audit log."""
        if record is None:
            self._hasher.verify(self._dummy_hash, password)
            return "unknown user"
        if not self._hasher.verify(record.password_hash, password):
            return "bad password"
        if not record.is_active:
            return "user disabled"
        if record.totp_enabled:
            if not totp:
                return "totp missing"
            assert record.totp_secret_enc is not None
            step = self._otp.matching_step(self._cipher.decrypt(record.totp_secret_enc), totp, now)
            if step is None:
                return "totp invalid"
            if not await uow.users.use_totp_step(record.uid, step):
                return "totp replayed"
        return None

    async def logout(self, principal: Principal, meta: RequestMeta) -> None:
        async with self._uow() as uow:
            expires = self._clock.now() + timedelta(seconds=self._tokens.ttl_seconds)
            await uow.revoked_tokens.revoke(principal.token_id, principal.uid, expires)
            await self._audit(
                uow,
                meta,
                principal.username,
                AuditAction.LOGOUT,
                f"user:{principal.uid}",
                jti=principal.token_id,
            )
            await uow.commit()
        self._principals.forget_user(principal.uid)

    def token_is_genuine(self, token: str) -> bool:
        """Signed by us and unexpired; no database lookup, so a revoked token still passes."""
        if self._principals.get(token, self._clock.now().timestamp()) is not None:
            return True
        try:
            self._tokens.decode(token)
        except NotAuthenticated:
            return False
        return True

    async def authenticate(self, token: str) -> Principal:
        """The token's user with their roles, unless revoked or disabled. Remembered until the
        security epoch moves (``PrincipalCache``, ``SecurityEpoch``): changes made through this
        service apply at once, changes made elsewhere within a second."""
        now = self._clock.now().timestamp()
        await self._epoch.check(now)
        cached = self._principals.get(token, now)
        if cached is not None:
            return cached
        claims = self._tokens.decode(token)
        try:
            uid = UserId(int(claims["sub"]))
            jti = str(claims["jti"])
        except (KeyError, TypeError, ValueError):
            raise NotAuthenticated("malformed token") from None
        generation = self._principals.generation
        async with self._uow() as uow:
            owner = await uow.users.token_owner(uid, jti)
        if owner is None or owner.revoked or not owner.is_active:
            raise NotAuthenticated("token revoked or user unknown")
        principal = Principal.of(owner.uid, owner.username, owner.roles, jti)
        self._principals.put(token, principal, now, float(claims["exp"]), generation)
        return principal

    # --- TOTP --------------------------------------------------------------------------------

    async def totp_enroll(self, principal: Principal, meta: RequestMeta) -> TotpEnrolment:
        async with self._uow() as uow:
            record = await self._require_user(uow, principal.uid)
            if record.totp_enabled:
                raise Conflict("TOTP is already enabled; disable it first")
            secret = self._otp.new_secret()
            await uow.users.set_totp(principal.uid, self._cipher.encrypt(secret), enabled=False)
            await self._audit(
                uow, meta, principal.username, AuditAction.TOTP_ENROLLED, f"user:{principal.uid}"
            )
            await uow.commit()
        return TotpEnrolment(secret, self._otp.provisioning_uri(secret, principal.username))

    async def totp_confirm(self, principal: Principal, code: str, meta: RequestMeta) -> None:
        async with self._uow() as uow:
            record = await self._require_user(uow, principal.uid)
            if record.totp_enabled:
                raise Conflict("TOTP is already enabled")
            if record.totp_secret_enc is None:
                raise Conflict("enrol first: POST /auth/totp/enroll")
            await self._consume_code(uow, record, code)
            await uow.users.set_totp(principal.uid, record.totp_secret_enc, enabled=True)
            await self._audit(
                uow, meta, principal.username, AuditAction.TOTP_ENABLED, f"user:{principal.uid}"
            )
            await uow.commit()

    async def totp_disable(self, principal: Principal, code: str, meta: RequestMeta) -> None:
        async with self._uow() as uow:
            record = await self._require_user(uow, principal.uid)
            if not record.totp_enabled:
                raise Conflict("TOTP is not enabled")
            await self._consume_code(uow, record, code)
            await uow.users.set_totp(principal.uid, None, enabled=False)
            await self._audit(
                uow, meta, principal.username, AuditAction.TOTP_DISABLED, f"user:{principal.uid}"
            )
            await uow.commit()

    async def _consume_code(self, uow: UnitOfWork, record: UserRecord, code: str) -> None:
        assert record.totp_secret_enc is not None
        step = self._otp.matching_step(self._cipher.decrypt(record.totp_secret_enc), code, self._clock.now())
        if step is None:
            raise InvalidInput("TOTP code is not valid", field="code")
        if not await uow.users.use_totp_step(record.uid, step):
            raise InvalidInput("TOTP code was used already", field="code")

    # --- helpers -----------------------------------------------------------------------------

    async def _require_user(self, uow: UnitOfWork, uid: UserId) -> UserRecord:
        record = await uow.users.get(uid)
        if record is None:
            raise NotFound(f"no user {uid}")
        return record

    async def _to_user(self, uow: UnitOfWork, record: UserRecord) -> User:
        roles = await uow.users.roles(record.uid)
        account = await uow.accounts.default_for_user(record.uid)
        return User(
            uid=record.uid,
            username=record.username,
            email=record.email,
            phone=record.phone,
            group=record.group,
            roles=roles,
            default_account_id=account.account_id if account else AccountId(""),
            totp_enabled=record.totp_enabled,
        )

    @staticmethod
    async def _audit(
        uow: UnitOfWork,
        meta: RequestMeta | None,
        actor: str,
        action: AuditAction,
        subject: str,
        **details: object,
    ) -> None:
        meta = meta or RequestMeta.cli()
        await uow.audit.append(AuditEntry(actor, action, subject, meta.request_id, meta.ip, dict(details)))
