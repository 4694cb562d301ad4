"""The bundle packed with each data file encrypted straight into the tar is the tar
``write_tar`` (and so ``tarfile``) writes from the same members; the manifest names the
files as they are in it."""

from __future__ import annotations

import hashlib
import json
import random
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519

from gateway.keys import age
from gateway.research import bundle_pack
from gateway.research.bundle import write_tar
from gateway.research.bundle_pack import pack_encrypted
from gateway.research.errors import BundleError
from gateway.research.manifest import FileEntry

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _manifest_of(files: list[FileEntry]) -> bytes:
    return (json.dumps([f.to_dict() for f in files], indent=2) + "\n").encode()


def _sign(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()  # 64 bytes, as an Ed25519 signature


NAMES = ("data.csv", "data.parquet")


def _pack(
    folder: Path, rng: random.Random, names: tuple[str, str] = NAMES
) -> tuple[Path, list[bytes], list[FileEntry], bytes]:
    sizes = [0, 1, 511, 512, 65535, 65536, 65537, rng.randrange(1, 400_000)]
    plains = []
    for name in names:
        path = folder / name
        path.write_bytes(rng.randbytes(rng.choice(sizes)))
        plains.append(path)
    texts = [p.read_bytes() for p in plains]
    target = folder / "bundle.tar"
    entries, manifest = pack_encrypted(
        target,
        [(plains[0], "text/csv"), (plains[1], "application/vnd.apache.parquet")],
        [str(IDENTITY.to_public())] * rng.randrange(1, 4),
        AT,
        _manifest_of,
        _sign,
    )
    assert not any(p.exists() for p in plains)  # the plaintext is gone
    return target, texts, entries, manifest


IDENTITY = x25519.Identity.generate()


def _same_as_write_tar(
    folder: Path,
    target: Path,
    texts: list[bytes],
    manifest: bytes,
    data_names: tuple[str, str] = NAMES,
) -> None:
    """Extract the members, write them again with ``write_tar``: the same bytes."""
    members = []
    with tarfile.open(target, mode="r:") as tar:
        names = tar.getnames()
        for number, name in enumerate(names):
            extracted = tar.extractfile(name)
            assert extracted is not None
            path = folder / f"member-{number}"
            path.write_bytes(extracted.read())
            members.append((name, path))
    assert names == ["manifest.json", "manifest.sig", *(f"{n}.age" for n in data_names)]
    assert members[0][1].read_bytes() == manifest
    assert members[1][1].read_bytes() == _sign(manifest)
    write_tar(folder / "again.tar", members, AT)
    assert (folder / "again.tar").read_bytes() == target.read_bytes()
    entries = json.loads(manifest)
    for (_, path), text, entry in zip(members[2:], texts, entries, strict=True):
        data = path.read_bytes()
        assert entry["encrypted"]["bytes"] == len(data)
        assert entry["encrypted"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(text)
        assert entry["sha256"] == hashlib.sha256(text).hexdigest()
        plain = folder / "plain"
        assert age.decrypt_with(path, plain, [IDENTITY])
        assert plain.read_bytes() == text


@pytest.mark.parametrize("seed", range(8))
def test_packed_in_place_is_what_write_tar_writes(tmp_path: Path, seed: int) -> None:
    target, texts, _, manifest = _pack(tmp_path, random.Random(seed))
    _same_as_write_tar(tmp_path, target, texts, manifest)


@pytest.mark.parametrize("seed", range(3))
def test_members_whose_names_need_an_extended_header_are_packed_whole(
    tmp_path: Path, seed: int
) -> None:
    """A name over tar's 100 characters takes a PAX header longer than one block."""
    names = ("r" * (100 + 40 * seed) + ".csv", "p" * 150 + ".parquet")
    target, texts, _, manifest = _pack(tmp_path, random.Random(seed), names)
    _same_as_write_tar(tmp_path, target, texts, manifest, names)


@pytest.mark.parametrize("seed", range(3))
def test_a_wrong_guess_of_the_room_moves_the_data_once(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room for a manifest a block too long or short: the data is moved, the bytes the same."""
    monkeypatch.setattr(bundle_pack, "SIGNATURE_SIZE", [0, 600, 1200][seed])
    target, texts, _, manifest = _pack(tmp_path, random.Random(seed))
    _same_as_write_tar(tmp_path, target, texts, manifest)
    assert not (tmp_path / "bundle.tar.moved").exists()


def test_the_guess_of_the_encrypted_size_has_its_digits() -> None:
    """The manifest's room is right when the guessed encrypted size has the true one's digits."""
    rng = random.Random(5)
    for size in [0, 1, 70_000, rng.randrange(1, 3_000_000)]:
        plain = rng.randbytes(size)
        for recipients in (1, 3):
            keys = [IDENTITY.to_public()] * recipients
            actual = len(pyrage.encrypt(plain, keys))
            guess = bundle_pack.likely_encrypted_size(size, recipients)
            assert abs(guess - actual) < 200, (size, recipients, guess, actual)


def test_each_plaintext_is_read_once_hashed_as_it_is_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [random.Random(n).randbytes(200_000) for n in range(2)]
    plains = [tmp_path / name for name in NAMES]
    for path, text in zip(plains, texts, strict=True):
        path.write_bytes(text)
    opened: list[str] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        if self.name in NAMES:
            opened.append(self.name)
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", counting_open)
    target = tmp_path / "bundle.tar"
    media = ("text/csv", "application/vnd.apache.parquet")
    recipients = [str(IDENTITY.to_public())]
    _, manifest = pack_encrypted(
        target, list(zip(plains, media, strict=True)), recipients, AT, _manifest_of, _sign
    )
    monkeypatch.undo()
    assert sorted(opened) == sorted(NAMES)  # one read of each, not a hash pass and another
    _same_as_write_tar(tmp_path, target, texts, manifest)


def test_a_file_that_grows_while_it_is_encrypted_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plains = [tmp_path / name for name in NAMES]
    for path in plains:
        path.write_bytes(b"x" * 1000)
    real = bundle_pack.encrypt_stream

    def growing(source: age.Readable, target: age.Writable, recipients: list[str]) -> None:
        with plains[0].open("ab") as more:  # another writer appends meanwhile
            more.write(b"y")
        real(source, target, recipients)

    monkeypatch.setattr(bundle_pack, "encrypt_stream", growing)
    media = ("text/csv", "application/vnd.apache.parquet")
    with pytest.raises(BundleError, match=r"data\.csv changed while it was encrypted"):
        pack_encrypted(
            tmp_path / "bundle.tar",
            list(zip(plains, media, strict=True)),
            [str(IDENTITY.to_public())],
            AT,
            _manifest_of,
            _sign,
        )
