"""The crypto adapters: argon2id at OWASP cost, HS256 JWTs, Fernet secrets, TOTP steps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
import pytest

from bourse.adapters.crypto import Argon2PasswordHasher, FernetCipher, JwtCodec, TotpCodes
from bourse.domain.errors import InvariantViolation, NotAuthenticated
from bourse.domain.values import UserId

SECRET = "s" * 40
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def argon2_params(encoded: str) -> dict[str, int]:
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", encoded)
    assert match, encoded
    m, t, p = (int(g) for g in match.groups())
    return {"m": m, "t": t, "p": p}


def test_production_hasher_uses_owasp_argon2id() -> None:
    hasher = Argon2PasswordHasher()
    encoded = hasher.hash("correct horse")
    params = argon2_params(encoded)
    assert params["m"] >= 19456
    assert params["t"] >= 2
    assert params["p"] == 1
    assert hasher.verify(encoded, "correct horse")
    assert not hasher.verify(encoded, "wrong horse")
    assert not hasher.needs_rehash(encoded)


def test_verify_tolerates_garbage_hashes() -> None:
    hasher = Argon2PasswordHasher(memory_kib=1024, time_cost=1)
    assert not hasher.verify("not-a-hash", "pw")
    assert not hasher.verify("", "pw")


def test_weaker_hash_needs_rehash_under_production_parameters() -> None:
    weak = Argon2PasswordHasher(memory_kib=1024, time_cost=1).hash("pw-123456")
    strong = Argon2PasswordHasher()
    assert strong.verify(weak, "pw-123456")  # old hashes keep working
    assert strong.needs_rehash(weak)


def codec(clock: Clock | None = None) -> JwtCodec:
    return JwtCodec(SECRET, "bourse", "bourse-api", 3600, clock or Clock(NOW))


def test_jwt_round_trip_carries_the_required_claims() -> None:
    token = codec().issue(UserId(100001), "jti-1", NOW)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = codec().decode(token)
    assert claims["sub"] == "100001"
    assert claims["jti"] == "jti-1"
    assert claims["iss"] == "bourse"
    assert claims["aud"] == "bourse-api"
    assert claims["exp"] - claims["iat"] == 3600


def test_jwt_expiry_follows_the_injected_clock() -> None:
    clock = Clock(NOW)
    c = codec(clock)
    token = c.issue(UserId(1), "j", NOW)
    clock.current = NOW + timedelta(seconds=3599)
    c.decode(token)
    clock.current = NOW + timedelta(seconds=3600)
    with pytest.raises(NotAuthenticated, match="expired"):
        c.decode(token)


def test_jwt_issued_in_the_future_is_refused() -> None:
    token = codec().issue(UserId(1), "j", NOW + timedelta(minutes=10))
    with pytest.raises(NotAuthenticated):
        codec().decode(token)


def test_jwt_from_another_secret_is_refused() -> None:
    other = JwtCodec("o" * 40, "bourse", "bourse-api", 3600, Clock(NOW))
    with pytest.raises(NotAuthenticated):
        codec().decode(other.issue(UserId(1), "j", NOW))


def test_jwt_verified_once_still_checks_times_and_never_vouches_for_another_token() -> None:
    """Claims are remembered per exact token string after one verification; times are checked on
    every call, and a token changed in any byte is verified (and refused) on its own."""
    clock = Clock(NOW)
    c = codec(clock)
    token = c.issue(UserId(1), "j", NOW)
    claims = c.decode(token)
    claims["sub"] = "2"  # a caller's change does not leak into the next answer
    assert c.decode(token)["sub"] == "1"
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"sub":"1"', b'"sub":"2"')
    ).decode()
    assert forged_payload != payload
    with pytest.raises(NotAuthenticated, match="invalid"):
        c.decode(f"{header}.{forged_payload}.{signature}")
    clock.current = NOW - timedelta(seconds=60)  # the clock stepped back: iat is now in the future
    with pytest.raises(NotAuthenticated, match="future"):
        c.decode(token)


def test_fernet_round_trip_and_wrong_key() -> None:
    cipher = FernetCipher("master-key-" + "x" * 30)
    sealed = cipher.encrypt("app-secret")
    assert "app-secret" not in sealed
    assert cipher.encrypt("app-secret") != sealed  # random IV: equal secrets do not look equal
    assert cipher.decrypt(sealed) == "app-secret"
    with pytest.raises(InvariantViolation, match="BOURSE_SECRET_KEY"):
        FernetCipher("another-key-" + "y" * 30).decrypt(sealed)


def test_totp_accepts_one_step_of_drift_only() -> None:
    codes = TotpCodes()
    secret = codes.new_secret()
    totp = pyotp.TOTP(secret)
    step = int(NOW.timestamp()) // 30
    assert codes.matching_step(secret, totp.at(step * 30), NOW) == step
    assert codes.matching_step(secret, totp.at((step - 1) * 30), NOW) == step - 1
    assert codes.matching_step(secret, totp.at((step + 1) * 30), NOW) == step + 1
    assert codes.matching_step(secret, totp.at((step + 2) * 30), NOW) is None
    assert codes.matching_step(secret, totp.at((step - 2) * 30), NOW) is None
    assert codes.matching_step(secret, "12345", NOW) is None
    assert codes.matching_step(secret, "abcdef", NOW) is None


def test_totp_provisioning_uri_names_the_issuer_and_user() -> None:
    uri = TotpCodes().provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "alice")
    assert uri.startswith("otpauth://totp/bourse:alice?")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri
    assert "issuer=bourse" in uri
