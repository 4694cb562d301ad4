"""``gateway serve``: --host, --port and --workers as every Python server has them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.cli import run
from tests.conftest import POLICIES

GATEWAY = str(Path(sys.executable).parent / "gateway")


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An initialised gateway's environment (SQLite, dev key ring), without GATEWAY_BIND."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    assert run(["init", "--no-demo"]) == 0
    return dict(os.environ)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_listens_where_host_and_port_say(environment: dict[str, str]) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [GATEWAY, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "the gateway stopped"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_busy_port_is_one_line_naming_the_way_out(environment: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [GATEWAY, "serve", "--port", str(port)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: port {port} is in use; set --port or GATEWAY_BIND"


def test_a_port_out_of_range_is_a_usage_error(environment: dict[str, str]) -> None:
    result = subprocess.run(
        [GATEWAY, "serve", "--port", "70000"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
