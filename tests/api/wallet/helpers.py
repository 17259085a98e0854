"""Set-up shared by the ext-orders tests: an asset, a funded user, service tokens, balances."""

from __future__ import annotations

from decimal import Decimal

from bourse.domain.ledger import EXTERNAL, HOUSE, Bucket, account_owner, move
from bourse.domain.values import AssetId

USDT = AssetId("USDT")


async def create_asset(container, asset: str = "USDT", scale: int = 8) -> None:
    await container.ledger.create_asset(asset, asset, scale, "Crypto")


async def create_user(container, username: str = "abc@def") -> str:
    """A user with a default account; returns the account id."""
    created = await container.identity.create_user(username, "wallet-pass-1")
    return str(created.account.account_id)


async def deposit(
    container, account_id: str, amount: str, asset: str = "USDT", bucket: str = Bucket.AVAILABLE
) -> None:
    async with container.uow() as uow:
        await uow.ledger.apply(
            move(
                "test.deposit",
                AssetId(asset),
                Decimal(amount),
                (EXTERNAL, Bucket.AVAILABLE),
                (account_owner(account_id), bucket),
            )
        )
        await uow.commit()


async def service_token(container, name: str = "game-a") -> dict[str, str]:
    token = (await container.credentials.create_service_token(name)).token
    return {"Authorization": f"Bearer {token}"}


async def balances(container, account_id: str, asset: str = "USDT") -> dict[str, Decimal]:
    """The user's buckets plus the house's available balance (key "house")."""
    owner = account_owner(account_id)
    async with container.uow() as uow:
        result = {b.value: await uow.ledger.balance(owner, AssetId(asset), b.value) for b in Bucket}
        # The wallet never touches derivative margin: say so here instead of in every expected dict.
        assert result.pop(Bucket.MARGIN.value) == 0, "the wallet moved money into the margin bucket"
        result["house"] = await uow.ledger.balance(HOUSE, AssetId(asset), Bucket.AVAILABLE)
        result["house_bonus"] = await uow.ledger.balance(HOUSE, AssetId(asset), Bucket.BONUS)
    return result


async def assert_ledger_clean(container) -> None:
    report = await container.ledger.check()
    assert report.clean, report
