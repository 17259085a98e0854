"""Output of ``bourse ledger check``."""

from __future__ import annotations

import typer

from bourse.bootstrap import Container
from bourse.domain.ledger import LedgerCheckReport
from bourse.domain.notifications import ledger_check_failed
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


async def check_and_notify(c: Container) -> LedgerCheckReport:
    """Run the check; a dirty ledger also raises a LedgerCheckFailed staff notification."""
    report = await c.ledger.check()
    if not report.clean:
        problems = {
            "mismatches": len(report.mismatches),
            "unbalancedTransactions": len(report.unbalanced),
            "unbalancedAssets": sum(1 for total in report.asset_totals.values() if total != 0),
            "negativeBalances": len(report.negative_user_balances),
        }
        note = ledger_check_failed(problems, c.clock.now())
        await c.notifications.raise_admin(note.type, note.title, note.body, note.data)
    return report
