"""Demo data for ``bourse demo``: idempotent, printed with the URL and logins."""

from __future__ import annotations

from rich.console import Console

from bourse.bootstrap import build
from bourse.config import Settings
from bourse.domain.errors import Conflict, NotFound
from bourse.domain.identity import Role

DEMO_USERS = (
    ("admin", "admin-demo-pass", (Role.ADMIN,)),
    ("operator", "operator-demo-pass", (Role.OPERATOR,)),
    ("alice", "alice-demo-pass", (Role.TRADER,)),
    ("bob", "bob-demo-pass", (Role.TRADER,)),
)
DEMO_SERVICE_TOKEN = "demo-wallet"


async def seed_and_print(settings: Settings, url: str) -> None:
    container = build(settings, url)
    try:
        for username, password, roles in DEMO_USERS:
            try:
                await container.identity.create_user(username, password, email=f"{username}@demo.bourse",
                                                     roles=roles, actor="demo")
            except Conflict:
                pass  # seeded by an earlier demo run
        # Tokens are shown once only, so the demo token is replaced on every start.
        try:
            await container.credentials.revoke_service_token(DEMO_SERVICE_TOKEN)
        except NotFound:
            pass
        token = await container.credentials.create_service_token(DEMO_SERVICE_TOKEN, ("ext-orders",))
    finally:
        await container.aclose()

    out = Console(highlight=False)
    base = f"http://{settings.host}:{settings.port}"
    out.print(f"\n[bold]bourse demo[/bold] at [link]{base}[/link]  (API docs: {base}/docs)")
    out.print(f"data dir: {settings.data_dir.resolve()}")
    out.print("logins (POST /auth/token, OAuth2 password form):")
    for username, password, roles in DEMO_USERS:
        out.print(f"  {username:<9} {password:<20} {', '.join(r.value for r in roles)}")
    out.print(f"ext-orders service token ({DEMO_SERVICE_TOKEN}): {token.token}\n")
