"""Composition root: settings in, services out. The only module that picks adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bourse.adapters.bus.inproc import InProcEventBus
from bourse.adapters.charting import PillowChartRenderer
from bourse.adapters.crypto import Argon2PasswordHasher, FernetCipher, JwtCodec, SystemClock, TotpCodes
from bourse.adapters.db.embedded import start_embedded
from bourse.adapters.db.engine import asyncpg_url, make_engine
from bourse.adapters.db.migrate import head_revision, upgrade
from bourse.adapters.db.uow import SqlDatabase, SqlUnitOfWork
from bourse.adapters.mail import DisabledMailer, SmtpMailer
from bourse.adapters.pricefeeds import CcxtPriceFeed
from bourse.adapters.ratelimit import LimitsRateLimiter
from bourse.adapters.reportfiles import LocalReportFiles
from bourse.adapters.sheets import CsvXlsxCodec
from bourse.adapters.venues.registry import VenueRegistry
from bourse.adapters.webhook import HttpxCallbackSender, SystemResolver
from bourse.config import Settings
from bourse.domain.callbacks import CallbackPolicy
from bourse.domain.circuit_breaker import BreakerSettings
from bourse.domain.venues import SourceQuote
from bourse.engine import EngineHub
from bourse.service.account_groups import AccountGroupService
from bourse.service.accounts import AccountService
from bourse.service.callbacks import CallbackService
from bourse.service.categories import CategoryService
from bourse.service.charting import ChartService
from bourse.service.credentials import CredentialService
from bourse.service.derivatives import DerivativesService
from bourse.service.fees import FeeService
from bourse.service.feeshare import FeeShareService
from bourse.service.hedging import HedgingService
from bourse.service.history import HistoryService
from bourse.service.identity import IdentityService, LoginPolicy
from bourse.service.ledger import LedgerService
from bourse.service.market_files import MarketFileService
from bourse.service.marketdata import MarketDataService
from bourse.service.markets import MarketService
from bourse.service.merchants import MerchantService
from bourse.service.notifications import NotificationService
from bourse.service.ports import Clock, EventBus, Mailer, PasswordHasher, UnitOfWork
from bourse.service.price_alerts import PriceAlertService
from bourse.service.pricing import PricingService
from bourse.service.reports import ReportService
from bourse.service.security_epoch import SecurityEpoch
from bourse.service.trading import TradingService
from bourse.service.transfers import TransferService
from bourse.service.wallet import WalletService
from bourse.service.workspace import WorkspaceService

# Connections of the matching engine runners (one batch at a time per market), apart from the
# request pool so that a runner always finds a connection with its statements already prepared.
ENGINE_POOL_SIZE = 4


def resolve_database_url(settings: Settings) -> str:
    """The configured PostgreSQL, or the embedded one under the data dir (started if needed)."""
    if settings.database_url:
        return asyncpg_url(settings.database_url)
    return start_embedded(settings.data_dir)


def migrate(url: str) -> None:
    upgrade(url)


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    identity: IdentityService
    credentials: CredentialService
    database: SqlDatabase
    clock: Clock
    rate_limiter: LimitsRateLimiter | None
    ledger: LedgerService
    accounts: AccountService
    transfers: TransferService
    callbacks: CallbackService
    wallet: WalletService
    bus: EventBus
    marketdata: MarketDataService
    markets: MarketService
    fees: FeeService
    trading: TradingService
    workspace: WorkspaceService
    notifications: NotificationService
    price_alerts: PriceAlertService
    history: HistoryService
    categories: CategoryService
    market_files: MarketFileService
    account_groups: AccountGroupService
    reports: ReportService
    mailer: Mailer
    charts: ChartService
    merchants: MerchantService
    feeshare: FeeShareService
    pricing: PricingService
    derivatives: DerivativesService
    hedging: HedgingService
    extras: dict[str, object] = field(default_factory=dict)
    # The engine runners' own few connections: their statements stay prepared on them.
    trading_db: AsyncEngine | None = None

    def uow(self) -> UnitOfWork:
        return SqlUnitOfWork(self.engine)

    async def aclose(self) -> None:
        await self.trading.engines.aclose()  # the runners finish their batches before the pool goes
        await self.pricing.aclose()  # the ccxt exchanges' HTTP sessions
        await self.hedging.connector.aclose()  # the ccxt venues' HTTP sessions
        if self.trading_db is not None:
            await self.trading_db.dispose()
        await self.engine.dispose()


def make_mailer(settings: Settings) -> Mailer:
    if not settings.smtp_host:
        return DisabledMailer()
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_from,
        username=settings.smtp_username,
        password=password,
        starttls=settings.smtp_starttls,
    )


def build(
    settings: Settings, url: str, *, hasher: PasswordHasher | None = None, clock: Clock | None = None
) -> Container:
    """Wire the services for one process. ``url`` must already be migrated."""
    engine = make_engine(url, settings.db_pool_size)
    clock = clock or SystemClock()
    cipher = FernetCipher(settings.secret_key.get_secret_value())

    def uow() -> UnitOfWork:
        return SqlUnitOfWork(engine)

    trading_db = make_engine(url, ENGINE_POOL_SIZE, max_overflow=2 * ENGINE_POOL_SIZE)

    def trading_uow() -> UnitOfWork:
        return SqlUnitOfWork(trading_db)

    # One read of the security epoch a second serves both kinds of kept token resolutions.
    epoch = SecurityEpoch(uow)
    identity = IdentityService(
        uow,
        clock,
        hasher or Argon2PasswordHasher(),
        JwtCodec(
            settings.jwt_secret.get_secret_value(),
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.jwt_ttl_seconds,
            clock,
        ),
        cipher,
        TotpCodes(),
        LoginPolicy(
            max_failures_per_user=settings.login_max_failures_per_user,
            max_failures_per_ip=settings.login_max_failures_per_ip,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        ),
        epoch=epoch,
    )
    callback_policy = CallbackPolicy(settings.callback_allowlist)
    limits = settings.rate_limit_per_second
    bus = InProcEventBus()
    accounts = AccountService(uow, settings.root_asset)
    notifications = NotificationService(uow, clock, bus, accounts)
    markets = MarketService(uow, clock, bus)
    marketdata = MarketDataService(uow, clock, bus)
    mailer = make_mailer(settings)
    credentials = CredentialService(uow, cipher, clock, epoch)
    reports = ReportService(
        uow,
        clock,
        LocalReportFiles(settings.data_dir / "reports"),
        mailer,
        notifications,
        root_asset=settings.root_asset,
        public_url=settings.base_url,
        retention=timedelta(days=settings.report_retention_days),
        timeout_seconds=settings.report_timeout_seconds,
    )
    pricing = PricingService(
        uow,
        clock,
        CcxtPriceFeed(clock, timeout_seconds=settings.price_feed_timeout_seconds),
        BreakerSettings(settings.circuit_breaker_move, settings.circuit_breaker_window_seconds),
        bus,
        feed_timeout=settings.price_feed_timeout_seconds + 1,
    )
    engines = EngineHub(trading_uow, clock, bus, root_asset=settings.root_asset)
    hedging: HedgingService

    async def paper_quote(symbol: str) -> SourceQuote:
        # Late-bound: the paper venues read prices through the hedging service made just below.
        return await hedging.source_quote(symbol)

    hedging = HedgingService(
        uow,
        clock,
        cipher,
        VenueRegistry(clock, paper_quote, ccxt_timeout_seconds=settings.price_feed_timeout_seconds * 2),
        pricing,
    )
    derivatives = DerivativesService(
        uow, clock, accounts, pricing, settings.root_asset, notifications, bus=bus, book=engines
    )
    return Container(
        settings=settings,
        engine=engine,
        identity=identity,
        credentials=credentials,
        database=SqlDatabase(engine, head_revision()),
        clock=clock,
        rate_limiter=LimitsRateLimiter(limits[0], limits[1], settings.redis_url) if limits else None,
        ledger=LedgerService(uow),
        accounts=accounts,
        transfers=TransferService(uow, clock, callback_policy, margin=derivatives),
        callbacks=CallbackService(uow, clock, callback_policy, SystemResolver(), HttpxCallbackSender()),
        wallet=WalletService(uow, clock),
        bus=bus,
        markets=markets,
        fees=FeeService(uow),
        marketdata=marketdata,
        trading=TradingService(uow, engines, accounts, settings.root_asset, margin=derivatives),
        trading_db=trading_db,
        workspace=WorkspaceService(uow, clock),
        notifications=notifications,
        price_alerts=PriceAlertService(uow, clock, bus, accounts, notifications),
        history=HistoryService(uow, settings.root_asset),
        categories=CategoryService(uow, clock),
        market_files=MarketFileService(uow, clock, markets, CsvXlsxCodec()),
        account_groups=AccountGroupService(uow, clock),
        reports=reports,
        mailer=mailer,
        charts=ChartService(marketdata, PillowChartRenderer(), clock),
        merchants=MerchantService(uow, clock),
        feeshare=FeeShareService(uow, clock, credentials),
        pricing=pricing,
        derivatives=derivatives,
        hedging=hedging,
    )
