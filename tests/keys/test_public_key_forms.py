"""One public-key parser: every form the gateway prints is accepted, as text or as a file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.audit.note import NoteVerifier
from gateway.errors import InvalidInputError
from gateway.keys.signing import Ed25519Signer, GivenPublicKey, parse_public_key, read_public_key

KEY = Ed25519Signer.generate().public_key
OLD = Ed25519Signer.generate().public_key
B64 = base64.b64encode(KEY).decode()
VKEY = NoteVerifier("riec.example/gateway/log", KEY).vkey()
KEYS_PUBLIC = (
    f"v1 ed25519 {base64.b64encode(OLD).decode()} sha256:{'ab' * 32} 2026-01-01\n"
    f"v2 ed25519 {B64} sha256:{'cd' * 32} 2026-11-23 active\n"
)

FORMS = {
    "verifier key (audit verifier-key)": VKEY,
    "keys public, one line": f"v2 ed25519 {B64} sha256:{'cd' * 32} 2026-11-23 active",
    "keys public, every version": KEYS_PUBLIC,
    ".pub file (hex and a newline)": KEY.hex() + "\n",
    "hex": KEY.hex(),
    "base64": B64,
    "hex with a comment line": f"# the gateway's key\n{KEY.hex()}\n",
}


@pytest.mark.parametrize("text", FORMS.values(), ids=FORMS.keys())
def test_every_form_the_gateway_prints_is_accepted(text: str) -> None:
    assert parse_public_key(text).public_key == KEY
    assert read_public_key(text.strip() if "\n" not in text.strip() else text).public_key == KEY


@pytest.mark.parametrize("text", FORMS.values(), ids=FORMS.keys())
def test_every_form_is_accepted_from_a_file(text: str, tmp_path: Path) -> None:
    path = tmp_path / "gateway-signing-key.pub"
    path.write_text(text, encoding="utf-8")
    assert read_public_key(str(path)).public_key == KEY


def test_a_verifier_key_keeps_its_name() -> None:
    assert parse_public_key(VKEY) == GivenPublicKey(KEY, "riec.example/gateway/log")
    assert parse_public_key(B64).name is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "not a public key"),
        ("abc", "not a public key"),
        ("00" * 31, "not a public key"),
        (base64.b64encode(b"x" * 31).decode(), "not a public key"),
        ("name+0000beef+" + base64.b64encode(b"\x01" + KEY).decode(), "does not match its key id"),
        (
            f"v1 ed25519 {base64.b64encode(OLD).decode()} x\nv2 ed25519 {B64} y\n",
            "not a public key",
        ),  # several keys, none marked active: which one is meant?
    ],
    # the keys are random per process: fixed ids keep the xdist workers' collections equal
    ids=["empty", "short", "31-bytes-hex", "31-bytes-base64", "wrong-key-id", "two-keys"],
)
def test_garbage_is_refused_with_one_line(value: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        read_public_key(value)
    assert message in info.value.detail and "\n" not in info.value.detail


@pytest.mark.parametrize("name", ["missing.pub", "keys/missing", "./missing"])
def test_a_missing_key_file_is_named_as_such(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError) as info:
        read_public_key(name)
    assert info.value.detail == f"no such file: {name}"
    absolute = str(tmp_path / name)
    with pytest.raises(InvalidInputError) as info:
        read_public_key(absolute)
    assert info.value.detail == f"no such file: {absolute}"


def test_a_folder_or_a_binary_file_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a folder"):
        read_public_key(str(tmp_path))
    binary = tmp_path / "key.bin"
    binary.write_bytes(b"\xff\xfe" * 10)
    with pytest.raises(InvalidInputError, match="not a text file"):
        read_public_key(str(binary))
    junk = tmp_path / "junk.pub"
    junk.write_text("hello\n")
    with pytest.raises(InvalidInputError) as info:
        read_public_key(str(junk))
    assert info.value.detail.startswith(f"{junk}: not a public key")
