"""Crypto adapters: argon2id passwords, HS256 JWTs, Fernet secrets, TOTP codes, the clock."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import argon2
import jwt
import pyotp
from cryptography.fernet import Fernet, InvalidToken

from bourse.domain.errors import InvariantViolation, NotAuthenticated
from bourse.domain.values import UserId

if TYPE_CHECKING:
    from bourse.service.ports import Clock

# OWASP password storage cheat sheet, argon2id: m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

JWT_ALGORITHM = "HS256"  # one hard-coded algorithm: a token's own "alg" header never chooses it
JWT_CLOCK_SKEW_SECONDS = 5
MAX_VERIFIED_TOKENS = 100_000  # then forgotten all at once (each is checked again once)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Argon2PasswordHasher:
    def __init__(
        self,
        memory_kib: int = ARGON2_MEMORY_KIB,
        time_cost: int = ARGON2_TIME_COST,
        parallelism: int = ARGON2_PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=argon2.Type.ID
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


class JwtCodec:
    def __init__(self, secret: str, issuer: str, audience: str, ttl_seconds: int, clock: Clock) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # token -> its claims, once the signature, issuer, audience and required claims checked
        # out: none of that can change for the same token string, so it is checked once (the
        # principal cache asks again every 1-2 s per trader, the edge middleware as often). The
        # times are checked on every call.
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, uid: UserId, jti: str, now: datetime) -> str:
        iat = int(now.timestamp())
        claims = {
            "sub": str(uid),
            "iat": iat,
            "exp": iat + self.ttl_seconds,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": jti,
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= MAX_VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = claims
        now = self._clock.now().timestamp()
        if claims["exp"] <= now:
            raise NotAuthenticated("token expired")
        if claims["iat"] > now + JWT_CLOCK_SKEW_SECONDS:
            raise NotAuthenticated("token issued in the future")
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # Times are checked below against the clock that issued them, not PyJWT's wall clock.
                options={
                    "require": ["exp", "iat", "iss", "aud", "jti", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as e:
            raise NotAuthenticated("invalid token") from e
        exp, iat = claims["exp"], claims["iat"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
            raise NotAuthenticated("invalid token")
        return claims


class FernetCipher:
    def __init__(self, master_key: str) -> None:
        # Derive a Fernet key so any sufficiently long master key works.
        key = base64.urlsafe_b64encode(hashlib.sha256(b"bourse-secrets:" + master_key.encode()).digest())
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as e:
            raise InvariantViolation(
                "a stored secret does not decrypt: was BOURSE_SECRET_KEY changed?"
            ) from e


class TotpCodes:
    issuer = "bourse"
    interval = 30

    def new_secret(self) -> str:
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, username: str) -> str:
        return pyotp.TOTP(secret, interval=self.interval).provisioning_uri(
            name=username, issuer_name=self.issuer
        )

    def matching_step(self, secret: str, code: str, now: datetime) -> int | None:
        code = code.strip()
        if not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret, interval=self.interval)
        step = int(now.timestamp()) // self.interval
        for candidate in (step, step - 1, step + 1):
            if totp.at(candidate * self.interval) == code:
                return candidate
        return None
