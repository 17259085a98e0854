"""The SQL unit of work: one connection, one transaction, every repository on it.

Leaving the block without ``commit()`` rolls back, so a use case that raises
half-way leaves nothing behind.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bourse.adapters.db.backoffice_repos import (
    SqlAccountGroupRepository,
    SqlCategoryRepository,
    SqlMarketFileRepository,
)
from bourse.adapters.db.derivatives_repos import SqlDerivativesRepository
from bourse.adapters.db.feeshare_repos import SqlFeeShareRepository, SqlMerchantRepository
from bourse.adapters.db.history_queries import SqlHistoryQueries
from bourse.adapters.db.identity_repos import (
    SqlAccountRepository,
    SqlAppKeyRepository,
    SqlAuditLog,
    SqlLoginFailureRepository,
    SqlRevokedTokenRepository,
    SqlServiceTokenRepository,
    SqlUserRepository,
)
from bourse.adapters.db.ledger_repos import SqlAssetRepository, SqlLedgerRepository
from bourse.adapters.db.market_repos import SqlCommissionRepository, SqlMarketRepository
from bourse.adapters.db.marketdata_repos import SqlMarketDataRepository
from bourse.adapters.db.pricing_repos import SqlPricingRepository
from bourse.adapters.db.report_repos import (
    SqlReportMailRepository,
    SqlReportRepository,
    SqlReportRows,
    SqlReportTemplateRepository,
)
from bourse.adapters.db.trading_repos import SqlTradingRepository
from bourse.adapters.db.transfer_repos import SqlCallbackRepository, SqlTransferRepository
from bourse.adapters.db.venue_repos import SqlVenueRepository
from bourse.adapters.db.wallet_repos import SqlExtRequestRepository
from bourse.adapters.db.workspace_repos import (
    SqlNotificationRepository,
    SqlPriceAlertRepository,
    SqlWorkspaceRepository,
)
from bourse.service import ports


class SqlUnitOfWork:
    # Typed as the ports, not the Sql* classes: the UnitOfWork protocol's attributes are
    # mutable, so mypy only accepts this class as one if the declared types match exactly.
    users: ports.UserRepository
    accounts: ports.AccountRepository
    revoked_tokens: ports.RevokedTokenRepository
    login_failures: ports.LoginFailureRepository
    service_tokens: ports.ServiceTokenRepository
    app_keys: ports.AppKeyRepository
    audit: ports.AuditLog
    ledger: ports.LedgerRepository
    assets: ports.AssetRepository
    transfers: ports.TransferRepository
    callbacks: ports.CallbackRepository
    ext_requests: ports.ExtRequestRepository
    marketdata: ports.MarketDataRepository
    markets: ports.MarketRepository
    commissions: ports.CommissionRepository
    trading: ports.TradingRepository
    workspace: ports.WorkspaceRepository
    notifications: ports.NotificationRepository
    price_alerts: ports.PriceAlertRepository
    history: ports.HistoryQueries
    categories: ports.CategoryRepository
    market_files: ports.MarketFileRepository
    account_groups: ports.AccountGroupRepository
    reports: ports.ReportRepository
    report_templates: ports.ReportTemplateRepository
    report_rows: ports.ReportRows
    report_mails: ports.ReportMailRepository
    merchants: ports.MerchantRepository
    feeshare: ports.FeeShareRepository
    pricing: ports.PricingRepository
    derivatives: ports.DerivativesRepository
    venues: ports.VenueRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        # No explicit BEGIN: SQLAlchemy 2 begins the transaction with the first statement (and
        # savepoint), and the driver sends BEGIN only then. Each explicit begin() was a round of
        # its async bridge (a greenlet) for nothing; after a commit, a later statement begins anew.
        conn = await self._engine.connect()
        self._conn = conn
        self.users = SqlUserRepository(conn)
        self.accounts = SqlAccountRepository(conn)
        self.revoked_tokens = SqlRevokedTokenRepository(conn)
        self.login_failures = SqlLoginFailureRepository(conn)
        self.service_tokens = SqlServiceTokenRepository(conn)
        self.app_keys = SqlAppKeyRepository(conn)
        self.audit = SqlAuditLog(conn)
        self.ledger = SqlLedgerRepository(conn)
        self.assets = SqlAssetRepository(conn)
        self.transfers = SqlTransferRepository(conn)
        self.callbacks = SqlCallbackRepository(conn)
        self.ext_requests = SqlExtRequestRepository(conn)
        self.marketdata = SqlMarketDataRepository(conn)
        self.markets = SqlMarketRepository(conn)
        self.commissions = SqlCommissionRepository(conn)
        self.trading = SqlTradingRepository(conn)
        self.workspace = SqlWorkspaceRepository(conn)
        self.notifications = SqlNotificationRepository(conn)
        self.price_alerts = SqlPriceAlertRepository(conn)
        self.history = SqlHistoryQueries(conn)
        self.categories = SqlCategoryRepository(conn)
        self.market_files = SqlMarketFileRepository(conn)
        self.account_groups = SqlAccountGroupRepository(conn)
        self.reports = SqlReportRepository(conn)
        self.report_templates = SqlReportTemplateRepository(conn)
        self.report_rows = SqlReportRows(conn)
        self.report_mails = SqlReportMailRepository(conn)
        self.merchants = SqlMerchantRepository(conn)
        self.feeshare = SqlFeeShareRepository(conn)
        self.pricing = SqlPricingRepository(conn)
        self.derivatives = SqlDerivativesRepository(conn)
        self.venues = SqlVenueRepository(conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "unit of work used outside its 'async with' block"
        return self._conn

    async def commit(self) -> None:
        await self.connection.commit()

    async def rollback(self) -> None:
        await self.connection.rollback()


class SqlDatabase:
    """Health checks for /readyz."""

    def __init__(self, engine: AsyncEngine, head_revision: str) -> None:
        self._engine = engine
        self._head = head_revision

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def migrations_current(self) -> bool:
        async with self._engine.connect() as conn:
            try:
                row = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).first()
            except Exception:
                return False
        return row is not None and row[0] == self._head
