"""What the HTTP bench scripts share: a free loopback port, a process's CPU so far,
``bourse serve`` started the way every bench measures it (rate limit off, log level WARNING,
no background jobs), and the few lines of HTTP/1.1 over asyncio streams their load
generators speak (rather than httpx, so that on a small machine the client takes as little
CPU from the server as possible). Import this module after the script has put src/ on sys.path."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), to tell its cost from the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_bourse(url: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    """``bourse serve`` on 127.0.0.1:``port`` against ``url``, one worker; stderr kept for errors."""
    env = {
        **os.environ,
        "BOURSE_DATABASE_URL": url,
        "BOURSE_RATE_LIMIT": "off",
        "BOURSE_LOG_LEVEL": "WARNING",
        "BOURSE_BACKGROUND_JOBS": "false",
    }
    bourse = Path(sys.executable).with_name("bourse")
    cmd = [str(bourse), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length: (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    """Until GET /readyz answers 200 (at most 60 s); the server's stderr if it exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n")
            status, _ = await read_response(reader)
            writer.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("server did not become ready in 60 s")


def latency_summary(latencies: list[float], wall: float, **cpu_seconds_spent: float) -> dict[str, float]:
    """Rate, p50 and p99 (ms) of a phase's timed requests, and each named CPU total per request (ms)."""
    latencies = sorted(latencies)
    n = len(latencies)
    summary = {
        "timed": n,
        "rate": n / wall if n else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if n else float("nan"),
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
    }
    for name, spent in cpu_seconds_spent.items():
        summary[f"{name}_ms"] = 1000 * spent / n if n else float("nan")
    return summary
