"""backoffice: market category tree, market file imports/exports, account groups

Every existing and new account is in group ``default`` ("Default": margin call
at 1 = 100% of used margin, stop out at 0.5 = 50%) unless another is chosen.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVEL = sa.Numeric(38, 18)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "market_categories",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["market_categories.id"],
            name=op.f("fk_market_categories_parent_id_market_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_categories")),
    )
    op.create_index(op.f("ix_market_categories_parent_id"), "market_categories", ["parent_id"])
    op.create_table(
        "market_category_markets",
        sa.Column("category_id", sa.Text(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["market_categories.id"],
            name=op.f("fk_market_category_markets_category_id_market_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.market_id"], name=op.f("fk_market_category_markets_market_id_markets")
        ),
        sa.PrimaryKeyConstraint("category_id", "market_id", name=op.f("pk_market_category_markets")),
    )
    op.create_index(op.f("ix_market_category_markets_market_id"), "market_category_markets", ["market_id"])

    op.create_table(
        "market_files",
        sa.Column("id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("requested_by_uid", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_token", sa.Text(), nullable=True),
        _ts("lease_until", nullable=True),
        sa.Column("next_row", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "row_errors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('Import', 'Export')", name=op.f("ck_market_files_kind")),
        sa.CheckConstraint("format IN ('Csv', 'Xlsx')", name=op.f("ck_market_files_format")),
        sa.CheckConstraint(
            "status IN ('InProcess', 'Completed', 'Failed')", name=op.f("ck_market_files_status")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_uid"], ["users.uid"], name=op.f("fk_market_files_requested_by_uid_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_files")),
    )
    op.create_index(
        "ix_market_files_pending",
        "market_files",
        ["created_at"],
        postgresql_where=sa.text("status = 'InProcess'"),
    )

    groups = op.create_table(
        "account_groups",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("margin_call_level", LEVEL, nullable=False),
        sa.Column("stop_out_level", LEVEL, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "stop_out_level > 0 AND stop_out_level < margin_call_level", name=op.f("ck_account_groups_levels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_groups")),
    )
    op.execute(
        groups.insert().values(
            id="default",
            name="Default",
            margin_call_level=sa.literal_column("1"),
            stop_out_level=sa.literal_column("0.5"),
            created_at=sa.func.now(),
            updated_at=sa.func.now(),
        )
    )
    op.add_column(
        "accounts",
        sa.Column("account_group_id", sa.Text(), server_default="default", nullable=False),
    )
    op.create_foreign_key(
        op.f("fk_accounts_account_group_id_account_groups"),
        "accounts",
        "account_groups",
        ["account_group_id"],
        ["id"],
    )
    op.create_index(op.f("ix_accounts_account_group_id"), "accounts", ["account_group_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_accounts_account_group_id"), table_name="accounts")
    op.drop_constraint(op.f("fk_accounts_account_group_id_account_groups"), "accounts", type_="foreignkey")
    op.drop_column("accounts", "account_group_id")
    op.drop_table("account_groups")
    op.drop_index("ix_market_files_pending", table_name="market_files")
    op.drop_table("market_files")
    op.drop_index(op.f("ix_market_category_markets_market_id"), table_name="market_category_markets")
    op.drop_table("market_category_markets")
    op.drop_index(op.f("ix_market_categories_parent_id"), table_name="market_categories")
    op.drop_table("market_categories")
