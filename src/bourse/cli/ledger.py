"""Output of ``bourse ledger check``."""

from __future__ import annotations

import typer

from bourse.domain.ledger import LedgerCheckReport
from bourse.domain.values import format_decimal


def print_check(report: LedgerCheckReport) -> bool:
    """Print the summary and every problem; True when the ledger is consistent."""
    typer.echo(
        f"ledger: {report.accounts} accounts, {report.transactions} transactions, {report.postings} postings"
    )
    for m in report.mismatches:
        typer.echo(
            f"MISMATCH account owner={m.owner} asset={m.asset} bucket={m.bucket} "
            f"stored={format_decimal(m.stored)} recomputed={format_decimal(m.recomputed)}"
        )
    for u in report.unbalanced:
        typer.echo(f"UNBALANCED transaction {u.tx_id} asset={u.asset} sum={format_decimal(u.total)}")
    for asset, total in sorted(report.asset_totals.items()):
        if total != 0:
            typer.echo(f"UNBALANCED asset {asset}: postings sum to {format_decimal(total)}")
    for b in report.negative_user_balances:
        typer.echo(
            f"NEGATIVE account owner={b.owner} asset={b.asset} bucket={b.bucket} "
            f"balance={format_decimal(b.amount)}"
        )
    if report.clean:
        typer.echo("ledger is consistent")
    else:
        problems = len(report.mismatches) + len(report.unbalanced) + len(report.negative_user_balances)
        typer.echo(f"ledger is NOT consistent: {problems} problem(s)")
    return report.clean
