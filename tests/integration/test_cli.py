"""The ``bourse`` command line against its own embedded PostgreSQL in a temporary data dir.

One data dir for the module, used in order: first commands on a fresh dir, then a
``serve`` in the background with the CLI used next to it, then crashes (kill -9 of
``serve``, then of PostgreSQL too) and a restart on the same data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

BOURSE = Path(sys.executable).with_name("bourse")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")}
# The module's tests share one data dir and run in order: under pytest-xdist they need the
# Makefile's ``--dist loadfile`` (a worker of their own would start from a fresh dir halfway).


def bourse(data_dir: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOURSE), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def bourse_together(data_dir: Path, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run commands at the same time: each is its own process on the shared data dir."""
    running = [
        (
            args,
            subprocess.Popen(
                [str(BOURSE), *args, "--data-dir", str(data_dir)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
            ),
        )
        for args in commands
    ]
    results = []
    for args, process in running:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postmaster(data_dir: Path) -> psutil.Process | None:
    pid_file = data_dir / "pg" / "postmaster.pid"
    try:
        process = psutil.Process(int(pid_file.read_text().splitlines()[0]))
    except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess):
        return None
    return process if process.is_running() and process.status() != psutil.STATUS_ZOMBIE else None


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def start_serve(
    data_dir: Path, name: str, *, env: dict[str, str] | None = None, ready_within: float = 90
) -> Server:
    """``bourse serve`` on a free port, its log beside the data dir; returns once /readyz answers."""
    port = free_port()
    log = data_dir.parent / f"{name}.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [str(BOURSE), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=ENV if env is None else env,
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited: {log.read_text()}"
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"serve did not become ready: {log.read_text()}")


def login(server: Server, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/token", data={"username": username, "password": password}, timeout=10
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli") / "data"
    yield path
    # Whatever a failed test left behind: our serve processes, then our PostgreSQL.
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pm = postmaster(path)
    if pm is not None:
        pm.send_signal(signal.SIGINT)  # fast shutdown
        pm.wait(30)


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(scope="module")
def serving(data_dir: Path) -> Iterator[Server]:
    server = start_serve(data_dir, "serve-1")
    _started.append(server.process)
    yield server


def test_create_user_on_a_fresh_data_dir(data_dir: Path) -> None:
    out = ok_json(
        bourse(
            data_dir,
            "admin",
            "create-user",
            "alice",
            "--password",
            "alice-pass-1",
            "--email",
            "alice@example.com",
            "--phone",
            "+4915100000001",
        )
    )
    assert set(out) == {"uid", "userId", "username", "accountId"}
    assert isinstance(out["uid"], int)
    assert out["userId"] == str(out["uid"])
    assert out["username"] == "alice"
    assert out["accountId"].startswith("A")
    assert (data_dir / "pg" / "PG_VERSION").exists()
    # The last command out stops the embedded server it started.
    assert postmaster(data_dir) is None


def test_serve_answers_readyz_and_logs_json_with_the_request_id(serving: Server) -> None:
    r = httpx.get(f"{serving.url}/readyz", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    request_id = r.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while not any(request_id in line for line in serving.log_lines()) and time.monotonic() < deadline:
        time.sleep(0.1)
    records = [json.loads(line) for line in serving.log_lines()]  # every line is one JSON object
    [access] = [rec for rec in records if rec.get("request_id") == request_id]
    assert (access["event"], access["path"], access["status"]) == ("request", "/readyz", 200)
    assert all(rec.get("request_id") for rec in records if rec["event"] == "request")


def test_a_second_serve_on_the_same_data_dir_fails_clearly(data_dir: Path, serving: Server) -> None:
    second = subprocess.run(
        [str(BOURSE), "serve", "--data-dir", str(data_dir), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    line = one_line_error(second)
    assert "already running" in line and str(data_dir) in line and str(serving.process.pid) in line
    assert httpx.get(f"{serving.url}/readyz", timeout=10).status_code == 200


def test_the_cli_works_while_serve_runs(data_dir: Path, serving: Server) -> None:
    created, granted, token, key, upgraded = bourse_together(
        data_dir,
        ("admin", "create-user", "bob", "--password", "bob-pass-12", "--role", "trader", "--role", "support"),
        ("admin", "grant", "alice", "operator"),
        ("admin", "create-service-token", "wallet", "--scope", "ext-orders"),
        ("admin", "create-app-key", "company-1"),
        ("db", "upgrade"),
    )
    bob = ok_json(created)
    assert ok_json(granted) == {"username": "alice", "role": "operator", "granted": True}
    token_out = ok_json(token)
    assert set(token_out) == {"name", "token"}
    assert token_out["name"] == "wallet" and token_out["token"].startswith("bst_")
    key_out = ok_json(key)
    assert set(key_out) == {"appKey", "secret"} and len(key_out["secret"]) == 64
    assert upgraded.returncode == 0, upgraded.stderr

    # The running server sees what the CLI wrote.
    r = login(serving, "bob", "bob-pass-12")
    assert r.status_code == 200, r.text
    me = httpx.get(f"{serving.url}/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["uid"] == bob["uid"] and me.json()["roles"] == ["support", "trader"]
    r = login(serving, "alice", "alice-pass-1")
    me = httpx.get(f"{serving.url}/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["roles"] == ["operator", "trader"]


def test_bad_arguments_exit_non_zero_with_one_line(data_dir: Path, serving: Server) -> None:
    cases = {
        ("admin", "create-user", "alice", "--password", "another-pass-1"): "username 'alice' is taken",
        (
            "admin",
            "create-user",
            "carol",
            "--password",
            "carol-pass-1",
            "--role",
            "wizard",
        ): "unknown role 'wizard'",
        ("admin", "create-user", "carol"): "Missing option '--password'",
    }
    for (args, message), result in zip(cases.items(), bourse_together(data_dir, *cases), strict=True):
        assert message in one_line_error(result), args


def test_error_lines_print_user_input_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    from bourse.cli.runtime import fail

    fail("a service token named '[/x]' exists")
    fail("no user '[bold]eve[/bold]'")
    assert capsys.readouterr().err.splitlines() == [
        "error: a service token named '[/x]' exists",
        "error: no user '[bold]eve[/bold]'",
    ]


def test_serve_killed_with_sigkill_comes_back_on_the_same_data(data_dir: Path, serving: Server) -> None:
    database = postmaster(data_dir)
    assert database is not None
    serving.process.kill()
    serving.process.wait()

    again = start_serve(data_dir, "serve-2")
    _started.append(again.process)
    # The PostgreSQL the killed serve left running was joined, not replaced.
    assert postmaster(data_dir) == database
    assert login(again, "alice", "alice-pass-1").status_code == 200
    assert login(again, "bob", "bob-pass-12").status_code == 200


def test_after_postgres_itself_was_killed_the_next_command_restarts_it(data_dir: Path) -> None:
    serve = _started[-1]
    database = postmaster(data_dir)
    assert database is not None and serve.poll() is None
    workers = database.children()
    serve.kill()
    serve.wait()
    database.kill()
    database.wait(10)
    psutil.wait_procs(workers, timeout=10)
    assert (data_dir / "pg" / "postmaster.pid").exists()  # stale

    carol = ok_json(bourse(data_dir, "admin", "create-user", "carol", "--password", "carol-pass-1"))
    assert carol["username"] == "carol"
    # Both killed processes were forgotten: the last command out stopped the server.
    assert postmaster(data_dir) is None


def test_a_stale_pid_file_naming_another_live_process_is_not_mistaken_for_the_server(data_dir: Path) -> None:
    # After a reboot or container restart the old postmaster's pid may belong to anything.
    assert postmaster(data_dir) is None
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        pgdata = data_dir / "pg"
        (pgdata / "postmaster.pid").write_text(
            f"{bystander.pid}\n{pgdata}\n1700000000\n5432\n{pgdata}\n\n  8826964     65536\nready   \n"
        )
        # alice, created before both crashes, is still there.
        assert ok_json(bourse(data_dir, "admin", "grant", "alice", "support"))["granted"] is True
        assert bystander.poll() is None  # left alone, not "stopped" as if it were PostgreSQL
        assert postmaster(data_dir) is None
    finally:
        bystander.kill()
        bystander.wait()


async def test_db_upgrade_migrates_an_empty_external_database(server_url: str, tmp_path: Path) -> None:
    import asyncpg

    from bourse.adapters.db.engine import with_database
    from bourse.adapters.db.migrate import head_revision

    name = f"bourse_cli_{os.getpid()}"
    admin = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server_url, name)
        env = {**ENV, "BOURSE_DATABASE_URL": url}
        upgraded = subprocess.run(
            [str(BOURSE), "db", "upgrade"], capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path
        )
        assert upgraded.returncode == 0, upgraded.stderr
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
        finally:
            await conn.close()
        assert not (tmp_path / "var").exists()  # no embedded server was started
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
