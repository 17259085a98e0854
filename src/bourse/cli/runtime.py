"""Shared CLI plumbing: settings from options, the database, one clear line on error."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

try:  # typer >= 0.20 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[assignment]

from bourse.bootstrap import Container, build, migrate, resolve_database_url
from bourse.config import Settings
from bourse.domain.errors import BourseError

T = TypeVar("T")
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    # Messages quote user input (names, roles): print it as text, never as rich markup.
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


class Cli(typer.Typer):
    """Typer whose usage errors (missing option, unknown command) are one line, like every other error."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("standalone_mode", False)
        try:
            code = super().__call__(*args, **kwargs)
        except NoArgsIsHelpError as e:
            e.show()  # ``bourse`` alone prints its help
            sys.exit(e.exit_code)
        except ClickException as e:
            fail(e.format_message(), e.exit_code)
            sys.exit(e.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    try:
        return Settings(**values)
    except ValidationError as e:
        first = e.errors()[0]
        raise fail(f"bad setting {'.'.join(map(str, first['loc'])) or ''}: {first['msg']}") from None


def database(settings: Settings) -> str:
    try:
        url = resolve_database_url(settings)
        migrate(url)
    except BourseError as e:
        raise fail(e.message) from None
    except OSError as e:
        raise fail(f"database unavailable: {e}") from None
    return url


def run_with_container(settings: Settings, work: Callable[[Container], Awaitable[T]]) -> T:
    url = database(settings)

    async def main() -> T:
        container = build(settings, url)
        try:
            return await work(container)
        finally:
            await container.aclose()

    try:
        return asyncio.run(main())
    except BourseError as e:
        raise fail(e.message) from None


def print_json(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")


class ServeLock:
    """One ``serve`` per data dir: an flock the kernel drops if the process dies (even kill -9)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir.expanduser().resolve() / "serve.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.path.read_text().strip() or "another process"
            raise fail(
                f"bourse serve is already running on data dir {self.path.parent} (pid {holder}); "
                "stop it or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
