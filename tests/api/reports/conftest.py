from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bourse.bootstrap import Container
from tests.api.reports.support import Mailbox, report_container, smtp_server


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
async def container(db_url: str, clock, tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[Container]:
    c = report_container(db_url, clock, tmp_path / "data", mailbox.port)
    yield c
    await c.aclose()
