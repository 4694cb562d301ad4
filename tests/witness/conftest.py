"""Real witness processes (``gateway witness serve``) on free ports, each with its own folder."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.audit.cosignature import CosignerKey
from gateway.audit.note import NoteVerifier
from gateway.cli import run
from gateway.keys.signing import Ed25519Signer
from tests.audit.conftest import ORIGIN, cli_env, signer  # noqa: F401  (fixtures)

GATEWAY = str(Path(sys.executable).with_name("gateway"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WitnessProcess:
    """One running ``gateway witness serve``; stop and start it again on the same port."""

    folder: Path
    key: CosignerKey
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def setting(self) -> str:
        """The witness as a ``GATEWAY_WITNESSES`` item."""
        return f"{self.url} {self.key.vkey()}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                GATEWAY,
                "witness",
                "serve",
                "--dir",
                str(self.folder),
                "--bind",
                f"127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"witness exited: {err}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("witness did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None


def log_vkey(log_signer: Ed25519Signer, origin: str = ORIGIN) -> str:
    """The tests' log key as the verifier key a witness is configured with."""
    return NoteVerifier(origin, log_signer.public_key).vkey()


def init_witness(
    folder: Path,
    name: str,
    log_signer: Ed25519Signer,
    capsys: pytest.CaptureFixture[str],
    origin: str = ORIGIN,
) -> CosignerKey:
    """Run ``gateway witness init``; return the witness key it printed."""
    vkey = log_vkey(log_signer, origin)
    code = run(["witness", "init", "--dir", str(folder), "--name", name, "--log", vkey])
    out = capsys.readouterr().out
    assert code == 0, out
    return CosignerKey.from_vkey(out.strip())


NAMES = ("witness.politie.test/riec", "witness.om.test/riec", "witness.fiod.test/riec")


@pytest.fixture
def start_witnesses(
    tmp_path: Path,
    signer: Ed25519Signer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[int], list[WitnessProcess]]]:
    """Start ``n`` witnesses of the tests' log (think: politie, OM, FIOD); stopped afterwards."""
    procs: list[WitnessProcess] = []

    def start(n: int) -> list[WitnessProcess]:
        started = []
        for name in NAMES[len(procs) : len(procs) + n]:
            folder = tmp_path / name.split("/")[0]
            proc = WitnessProcess(folder, init_witness(folder, name, signer, capsys))
            procs.append(proc)
            proc.start()
            started.append(proc)
        return started

    try:
        yield start
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture
def witness(start_witnesses: Callable[[int], list[WitnessProcess]]) -> WitnessProcess:
    """One running witness."""
    return start_witnesses(1)[0]
