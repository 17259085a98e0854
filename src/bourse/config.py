"""Settings, read once from the environment (prefix ``BOURSE_``) and frozen.

Secrets have development defaults so that ``make demo`` works on a fresh clone;
outside ``BOURSE_ENV=dev`` a secret left at its default refuses to start.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
DEV_SECRET_KEY = "dev-only-master-key-change-me-0123456789abcdef"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOURSE_", frozen=True, extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded server under data_dir"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "bourse"
    jwt_audience: str = "bourse-api"
    jwt_ttl_seconds: int = 3600
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)

    login_max_failures_per_user: int = 5
    login_max_failures_per_ip: int = 50
    login_failure_window_seconds: int = 900

    rate_limit: str = Field(
        default="200/400",
        description="requests per second per caller and burst, as RATE/BURST; 'off' disables it",
    )
    redis_url: str | None = None

    root_asset: str = "USDT"
    callback_allowlist: tuple[str, ...] = Field(
        default=(),
        description="host[:port] entries a transfer callbackUrl may point at despite being private",
    )
    db_pool_size: int = 32
    background_jobs: bool = Field(
        default=True, description="run background jobs (transfer callback delivery) in the API process"
    )
    engines_on_start: bool = Field(
        default=True,
        description="start every market's engine at start-up (rebuild and check its book) instead of on first use",
    )

    smtp_host: str | None = Field(default=None, description="SMTP server for report mails; unset: no mail")
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "bourse@localhost"
    smtp_starttls: bool | None = Field(
        default=None, description="true: require STARTTLS; false: never; unset: when the server offers it"
    )
    public_url: str | None = Field(
        default=None,
        description="the API's address as users reach it (links in mails); unset: http://HOST:PORT",
    )
    report_retention_days: int = Field(default=7, ge=1, description="a report downloads for this long")
    report_timeout_seconds: int = Field(default=1800, ge=1, description="longest a report may run")

    circuit_breaker_move: Decimal = Field(
        default=Decimal("0.10"),
        ge=0,
        lt=1,
        description="halt a market whose trade price moves more than this fraction within the window; 0: off",
    )
    circuit_breaker_window_seconds: int = Field(
        default=300, ge=0, description="the circuit breaker's window; 0: off"
    )
    pricing_tick_seconds: float = Field(
        default=1.0, gt=0, description="how often derivative price sources are read and marks sampled"
    )
    price_feed_timeout_seconds: float = Field(
        default=5.0, gt=0, description="longest a ccxt ticker request may take"
    )

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_shape(cls, value: str) -> str:
        if value == "off":
            return value
        rate, _, burst = value.partition("/")
        if not rate.isdigit() or (burst and not burst.isdigit()) or int(rate) <= 0:
            raise ValueError("BOURSE_RATE_LIMIT must be 'off', 'RATE' or 'RATE/BURST' with whole numbers")
        return value

    @model_validator(mode="after")
    def _no_default_secrets_outside_dev(self) -> Settings:
        if self.env != "dev":
            if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
                raise ValueError("BOURSE_JWT_SECRET must be set outside BOURSE_ENV=dev")
            if self.secret_key.get_secret_value() == DEV_SECRET_KEY:
                raise ValueError("BOURSE_SECRET_KEY must be set outside BOURSE_ENV=dev")
        if len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("BOURSE_JWT_SECRET must be at least 32 characters")
        return self

    @property
    def base_url(self) -> str:
        """Where users reach the API (``public_url``, else this process's host and port)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def rate_limit_per_second(self) -> tuple[int, int] | None:
        """(rate, burst) or None when rate limiting is off."""
        if self.rate_limit == "off":
            return None
        rate, _, burst = self.rate_limit.partition("/")
        return int(rate), int(burst or rate)
