"""Settings: read from BOURSE_* variables, frozen, and no development secret outside dev."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from bourse.config import DEV_JWT_SECRET, DEV_SECRET_KEY, Settings

STRONG_JWT = "j" * 40
STRONG_KEY = "k" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BOURSE_"):
            monkeypatch.delenv(name)


def test_defaults_run_a_development_instance() -> None:
    s = Settings()
    assert s.env == "dev"
    assert str(s.data_dir) == "var"
    assert s.database_url is None
    assert s.rate_limit_per_second == (200, 400)
    assert s.jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_values_come_from_bourse_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOURSE_PORT", "9123")
    monkeypatch.setenv("BOURSE_DATA_DIR", "/srv/bourse")
    monkeypatch.setenv("BOURSE_DATABASE_URL", "postgresql://u:p@db:5432/bourse")
    monkeypatch.setenv("BOURSE_RATE_LIMIT", "off")
    monkeypatch.setenv("PORT", "1")  # unprefixed variables are not ours
    s = Settings()
    assert s.port == 9123
    assert str(s.data_dir) == "/srv/bourse"
    assert s.database_url == "postgresql://u:p@db:5432/bourse"
    assert s.rate_limit_per_second is None


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.port = 1


def test_secrets_are_masked_in_repr() -> None:
    s = Settings(jwt_secret=STRONG_JWT, secret_key=STRONG_KEY)  # type: ignore[arg-type]
    assert STRONG_JWT not in repr(s)
    assert STRONG_KEY not in repr(s)


@pytest.mark.parametrize("env", ["test", "prod"])
def test_default_jwt_secret_refused_outside_dev(env: str) -> None:
    with pytest.raises(ValidationError, match="BOURSE_JWT_SECRET"):
        Settings(env=env, secret_key=STRONG_KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize("env", ["test", "prod"])
def test_default_master_key_refused_outside_dev(env: str) -> None:
    with pytest.raises(ValidationError, match="BOURSE_SECRET_KEY"):
        Settings(env=env, jwt_secret=STRONG_JWT)  # type: ignore[arg-type]


def test_prod_starts_with_its_own_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOURSE_ENV", "prod")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("BOURSE_JWT_SECRET", STRONG_JWT)
    monkeypatch.setenv("BOURSE_SECRET_KEY", STRONG_KEY)
    s = Settings()
    assert s.env == "prod"
    assert s.secret_key.get_secret_value() not in (DEV_SECRET_KEY, DEV_JWT_SECRET)


def test_short_jwt_secret_refused_even_in_dev() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(jwt_secret="short")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"), [("off", None), ("5", (5, 5)), ("3/3", (3, 3)), ("10/50", (10, 50))]
)
def test_rate_limit_forms(value: str, expected: tuple[int, int] | None) -> None:
    assert Settings(rate_limit=value).rate_limit_per_second == expected


@pytest.mark.parametrize("value", ["", "fast", "0", "0/10", "5/x", "-1/2", "1.5/3"])
def test_bad_rate_limit_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="BOURSE_RATE_LIMIT"):
        Settings(rate_limit=value)
