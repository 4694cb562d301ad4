"""Bundles: the researcher verifies and opens them; any tampering fails with one opaque error."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from gateway.cli import run
from gateway.errors import ConflictError, IntegrityCheckFailed, InvalidInputError
from gateway.keys.signing import Ed25519Signer
from gateway.research.bundle import (
    clean_stale_workdirs,
    open_bundle,
    parse_public_key,
    read_identities,
    verify_bundle,
    workdir,
)
from gateway.research.errors import BundleError
from gateway.research.manifest import manifest_bytes
from tests.research.conftest import Releaser

Members = list[tuple[str, bytes]]


@pytest.fixture(scope="module")
def bundle_bytes(
    tmp_path_factory: pytest.TempPathFactory,
    agreement: Any,
    signer: Ed25519Signer,
    identities: list[x25519.Identity],
    rows: list[dict[str, Any]],
) -> bytes:
    """The bytes of one good bundle of the example agreement."""
    from tests.research.doubles import FakeKeyRing

    releaser = Releaser(
        agreement, FakeKeyRing(), signer, identities[0], tmp_path_factory.mktemp("b")
    )
    return releaser.release(rows, "bundle-test").bundle.read_bytes()


def _members(data: bytes) -> Members:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        out = []
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            out.append((member.name, handle.read()))
        return out


def _pack(members: Members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _edit_manifest(members: Members, change: Callable[[dict[str, Any]], None]) -> Members:
    manifest = json.loads(members[0][1])
    change(manifest)
    return [(members[0][0], manifest_bytes(manifest)), *members[1:]]


TAMPERINGS: dict[str, Callable[[Members], Members]] = {
    "manifest count changed": lambda m: _edit_manifest(
        m, lambda doc: doc["counts"].update(rows_out=doc["counts"]["rows_out"] + 1)
    ),
    "manifest checksum changed": lambda m: _edit_manifest(
        m, lambda doc: doc["files"][0]["encrypted"].update(sha256="0" * 64)
    ),
    "manifest whitespace changed": lambda m: [(m[0][0], m[0][1] + b"\n"), *m[1:]],
    "signature flipped": lambda m: [m[0], (m[1][0], _flip(m[1][1], 10)), *m[2:]],
    "signature empty": lambda m: [m[0], (m[1][0], b""), *m[2:]],
    "csv member flipped": lambda m: [*m[:2], (m[2][0], _flip(m[2][1], len(m[2][1]) // 2)), m[3]],
    "parquet member flipped": lambda m: [*m[:3], (m[3][0], _flip(m[3][1], 200))],
    "member truncated": lambda m: [*m[:3], (m[3][0], m[3][1][:-1])],
    "member missing": lambda m: m[:3],
    "member added": lambda m: [*m, ("notes.txt", b"hello")],
    "member duplicated": lambda m: [*m, m[3]],
    "members reordered": lambda m: [m[0], m[1], m[3], m[2]],
    "manifest not first": lambda m: [m[1], m[0], *m[2:]],
    "member renamed": lambda m: [*m[:3], ("data.parquet", m[3][1])],
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_bundles_fail_verify(
    tamper: Callable[[Members], Members], bundle_bytes: bytes, signer: Ed25519Signer, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(_pack(tamper(_members(bundle_bytes))))
    with pytest.raises(IntegrityCheckFailed) as info:
        verify_bundle(path, signer.public_key)
    assert str(info.value) == "integrity check failed"


def test_repacked_untampered_bundle_still_verifies(
    bundle_bytes: bytes, signer: Ed25519Signer, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(_pack(_members(bundle_bytes)))
    assert verify_bundle(path, signer.public_key).manifest["release"]["id"] == "bundle-test"


@pytest.mark.parametrize("kind", ["truncated", "garbage", "symlink member", "other key"])
def test_broken_files_and_foreign_keys_fail_verify(
    kind: str, bundle_bytes: bytes, signer: Ed25519Signer, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tar"
    key = signer.public_key
    if kind == "truncated":
        path.write_bytes(bundle_bytes[: len(bundle_bytes) // 2])
    elif kind == "garbage":
        path.write_bytes(b"\x00\xff" * 5000)
    elif kind == "symlink member":
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in _members(bundle_bytes):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                if name == "data.parquet.age":
                    info.type, info.linkname, info.size = tarfile.SYMTYPE, "/etc/passwd", 0
                tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        path.write_bytes(buffer.getvalue())
    else:
        path.write_bytes(bundle_bytes)
        key = Ed25519Signer.generate().public_key
    with pytest.raises(IntegrityCheckFailed):
        verify_bundle(path, key)


def test_a_manifest_signed_by_another_key_fails(
    bundle_bytes: bytes, signer: Ed25519Signer, tmp_path: Path
) -> None:
    forger = Ed25519Signer.generate()
    members = _members(bundle_bytes)
    path = tmp_path / "bundle.tar"
    path.write_bytes(_pack([members[0], (members[1][0], forger.sign(members[0][1])), *members[2:]]))
    with pytest.raises(IntegrityCheckFailed):
        verify_bundle(path, forger.public_key)  # the manifest names the gateway's key
    members = _edit_manifest(
        members, lambda doc: doc["signature"].update(key_fingerprint=forger.fingerprint)
    )
    forged = [members[0], (members[1][0], forger.sign(members[0][1])), *members[2:]]
    path.write_bytes(_pack(forged))
    verify_bundle(path, forger.public_key)  # consistent in itself ...
    with pytest.raises(IntegrityCheckFailed):
        verify_bundle(path, signer.public_key)  # ... but not signed by the gateway


def test_audit_inclusion_hook_is_asked(
    bundle_bytes: bytes, signer: Ed25519Signer, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(bundle_bytes)
    asked: list[str] = []

    def included(manifest: Any, manifest_sha256: str) -> None:
        asked.append(manifest_sha256)

    verified = verify_bundle(path, signer.public_key, audit_inclusion=included)
    assert verified.audit_checked and asked == [verified.manifest_sha256]

    def missing(manifest: Any, manifest_sha256: str) -> None:
        raise IntegrityCheckFailed()

    with pytest.raises(IntegrityCheckFailed):
        verify_bundle(path, signer.public_key, audit_inclusion=missing)


def test_open_decrypts_for_every_researcher_and_checks_plaintext(
    bundle_bytes: bytes, signer: Ed25519Signer, identities: list[x25519.Identity], tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(bundle_bytes)
    for n, identity in enumerate(identities):
        out = tmp_path / f"opened-{n}"
        written = open_bundle(path, signer.public_key, [identity], out)
        assert [p.name for p in written] == ["manifest.json", "data.csv", "data.parquet"]
        assert (out / "data.csv").read_text().startswith('"person","person_nb"')
        assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no work folder left
    with pytest.raises(BundleError, match="not one of its recipients"):
        open_bundle(path, signer.public_key, [x25519.Identity.generate()], tmp_path / "x")
    with pytest.raises(ConflictError, match="already holds"):
        open_bundle(path, signer.public_key, [identities[0]], tmp_path / "opened-0")


def test_open_refuses_a_tampered_bundle_before_decrypting(
    bundle_bytes: bytes, signer: Ed25519Signer, identities: list[x25519.Identity], tmp_path: Path
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(_pack(TAMPERINGS["csv member flipped"](_members(bundle_bytes))))
    with pytest.raises(IntegrityCheckFailed):
        open_bundle(path, signer.public_key, identities, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_verify_and_open(
    bundle_bytes: bytes,
    signer: Ed25519Signer,
    identities: list[x25519.Identity],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(bundle_bytes)
    key_file = tmp_path / "gateway.pub"
    key_file.write_text(signer.public_key.hex() + "\n")
    identity_file = tmp_path / "me.key"
    identity_file.write_text(f"# created for a test\n{identities[1]}\n")
    assert run(["extract", "verify", str(path), "--public-key", str(key_file)]) == 0
    out = capsys.readouterr().out
    assert "OK: release bundle-test" in out and "inclusion not checked" in out
    assert (
        run(
            [
                "extract",
                "open",
                str(path),
                "--public-key",
                signer.public_key.hex(),
                "--identity",
                str(identity_file),
                "--out",
                str(tmp_path / "opened"),
            ]
        )
        == 0
    )
    assert (tmp_path / "opened" / "data.parquet").exists()


@pytest.mark.parametrize("tamper", ["manifest count changed", "csv member flipped", "member added"])
def test_cli_verify_of_a_tampered_bundle_is_one_line_and_exit_1(
    tamper: str,
    bundle_bytes: bytes,
    signer: Ed25519Signer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bundle.tar"
    path.write_bytes(_pack(TAMPERINGS[tamper](_members(bundle_bytes))))
    assert run(["extract", "verify", str(path), "--public-key", signer.public_key.hex()]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: integrity check failed\n" and captured.out == ""


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["extract", "verify", str(tmp_path / "none.tar"), "--public-key", "00" * 32]) == 1
    assert capsys.readouterr().err.startswith("error: no bundle at ")
    assert run(["extract", "verify", str(tmp_path / "none.tar"), "--public-key", "abc"]) == 1
    assert "32 bytes" in capsys.readouterr().err


def test_public_keys_in_hex_or_base64() -> None:
    key = Ed25519Signer.generate().public_key
    assert parse_public_key(key.hex()) == key
    assert parse_public_key(base64.b64encode(key).decode() + "\n") == key
    for bad in ("", "zz", "00" * 31, base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(InvalidInputError, match="32 bytes"):
            parse_public_key(bad)


def test_identity_files(tmp_path: Path, identities: list[x25519.Identity]) -> None:
    good = tmp_path / "good.key"
    good.write_text(f"# comment\n\n{identities[0]}\n{identities[1]}\n")
    assert len(read_identities(good)) == 2
    empty = tmp_path / "empty.key"
    empty.write_text("# nothing here\n")
    with pytest.raises(BundleError, match="no age identity"):
        read_identities(empty)
    broken = tmp_path / "broken.key"
    broken.write_text("# key\nnot-a-key\n")
    with pytest.raises(BundleError, match=r"broken.key:2: not an age X25519 identity"):
        read_identities(broken)
    with pytest.raises(BundleError, match="cannot read identity file"):
        read_identities(tmp_path / "missing.key")


def test_stale_work_folders_are_removed_but_live_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".extract-tmp-crashed"
    stale.mkdir()
    (stale / "data.csv").write_text("half")
    with workdir(tmp_path) as live:
        (live / "pass1.arrow").write_bytes(b"busy")
        removed = clean_stale_workdirs(tmp_path)
        assert removed == [".extract-tmp-crashed"]
        assert live.exists()
    assert not live.exists()
    young_and_empty = tmp_path / ".extract-tmp-starting"
    young_and_empty.mkdir()
    assert clean_stale_workdirs(tmp_path) == []  # may be a run about to lock it
    assert clean_stale_workdirs(tmp_path, now=young_and_empty.stat().st_mtime + 3600) == [
        ".extract-tmp-starting"
    ]


def test_cli_verify_takes_the_key_in_every_form_the_gateway_prints(
    bundle_bytes: bytes, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.audit.note import NoteVerifier

    path = tmp_path / "bundle.tar"
    path.write_bytes(bundle_bytes)
    key = signer.public_key
    b64 = base64.b64encode(key).decode()
    forms = {
        "vkey": NoteVerifier("riec.example/log", key).vkey(),
        "keys public": f"v1 ed25519 {b64} sha256:{signer.fingerprint} 2026-11-23 active",
        "hex": key.hex(),
        "base64": b64,
    }
    for name, text in forms.items():
        file = tmp_path / f"{name.replace(' ', '-')}.pub"
        file.write_text(text + "\n", encoding="utf-8")
        for given in (text, str(file)):
            assert run(["extract", "verify", str(path), "--public-key", given]) == 0, name
            assert capsys.readouterr().out.startswith("OK: release ")
    missing = tmp_path / "nowhere" / "gateway-signing-key.pub"
    assert run(["extract", "verify", str(path), "--public-key", str(missing)]) == 1
    assert capsys.readouterr().err == f"error: no such file: {missing}\n"
    assert run(["extract", "verify", str(path), "--public-key", "garbage"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: not a public key") and err.count("\n") == 1
