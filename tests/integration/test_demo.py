"""`bourse demo` (what `make demo` runs): serves, seeds demo data once, prints URL and logins."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.integration.test_cli import BOURSE, free_port

ENV = {k: v for k, v in os.environ.items() if not k.startswith("BOURSE_")} | {"BOURSE_RATE_LIMIT": "off"}


def run_demo(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(BOURSE), "demo", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "bourse demo exited early"
        time.sleep(0.3)
    else:
        process.kill()
        raise AssertionError("bourse demo did not become ready in 90 s")
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    return out


def test_demo_serves_seeds_once_and_prints_the_logins(tmp_path: Path) -> None:
    port = free_port()
    process, base = run_demo(tmp_path, port)
    try:
        token = httpx.post(
            f"{base}/auth/token", data={"username": "alice", "password": "alice-demo-pass"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        accounts = httpx.get(f"{base}/frontoffice/api/v3/accounts", headers=headers).json()
        assert accounts[0]["totalBalanceInRAT"] == "10000"
        markets = {
            m["marketId"] for m in httpx.get(f"{base}/frontoffice/api/v3/markets", headers=headers).json()
        }
        assert {"BTCUSDT", "ETHUSDT", "ETHBTC"} <= markets
    finally:
        out = stop(process)
    assert f"{base}" in out
    for login in ("admin", "operator", "alice", "bob"):
        assert f"{login}-demo-pass" in out
    assert "bst_" in out  # the wallet dialect's service token

    # A second start on the same data dir reuses it: same users, balances not credited twice.
    process, base = run_demo(tmp_path, port)
    try:
        token = httpx.post(
            f"{base}/auth/token", data={"username": "alice", "password": "alice-demo-pass"}
        ).json()["access_token"]
        accounts = httpx.get(
            f"{base}/frontoffice/api/v3/accounts", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert accounts[0]["totalBalanceInRAT"] == "10000"
    finally:
        stop(process)
