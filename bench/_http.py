"""What the HTTP bench scripts share: a free loopback port, a process's CPU so far, and
``bourse serve`` started the way every bench measures it (rate limit off, log level WARNING,
no background jobs). Import this module after the script has put src/ on sys.path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
