"""Packing a release's bundle: each data file encrypted straight into the tar.

The bundle (see ``gateway.research.bundle``) is ``manifest.json``, ``manifest.sig`` and
then each data file encrypted with age. Its data members are written in place: each
plaintext file is hashed, encrypted into the tar behind a member header that is filled
in once the encrypted size is known, hashed as it is written, and deleted. No
encrypted copy is written beside the tar and copied into it.

The manifest names the encrypted files' sizes and hashes, yet comes first; room for it
is left before the data. Its length is known beforehand up to the digits of the
encrypted sizes, which are nearly always what the plaintext sizes predict; if the
manifest and signature come out in another number of tar blocks than the room left,
the data is moved once into a tar with the right room (the same bytes either way: what
``write_tar`` writes from the same members).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from gateway.keys import age
from gateway.keys.signing import SIGNATURE_SIZE
from gateway.research.bundle import copy_into, fsync_path, sized_member_info
from gateway.research.errors import BundleError
from gateway.research.manifest import MANIFEST_NAME, SIGNATURE_NAME, FileEntry

ENCRYPTED_SUFFIX = ".age"
_READ_BUFFER = 1 << 20
"""Bytes read from a plaintext file at a time (age asks for a few KB per call)."""
_AGE_CHUNK = 64 << 10
_AGE_TAG = 16
_AGE_HEADER = 165
_AGE_STANZA = 98
"""An age header is about 165 bytes (with its random grease stanza: 90-240) and 98 more per
X25519 recipient; only the digits of the guessed size matter."""

encrypt_stream = age.encrypt_stream


def likely_encrypted_size(size: int, recipients: int) -> int:
    """Return about the size of ``size`` bytes encrypted with age (a guess for the manifest)."""
    chunks = max(1, -(-size // _AGE_CHUNK))
    return _AGE_HEADER + _AGE_STANZA * recipients + _AGE_TAG + size + _AGE_TAG * chunks


def _header(name: str, size: int, mtime: datetime) -> bytes:
    return sized_member_info(name, size, mtime).tobuf(
        tarfile.PAX_FORMAT, "utf-8", "surrogateescape"
    )


def _member(name: str, data: bytes, mtime: datetime) -> bytes:
    return _header(name, len(data), mtime) + data + tarfile.NUL * (-len(data) % tarfile.BLOCKSIZE)


def tar_head(manifest: bytes, signature: bytes, mtime: datetime) -> bytes:
    """Return the tar's first two members: the manifest and its signature."""
    return _member(MANIFEST_NAME, manifest, mtime) + _member(SIGNATURE_NAME, signature, mtime)


def _trailer(written: int) -> bytes:
    end = 2 * tarfile.BLOCKSIZE
    return tarfile.NUL * (end + -(written + end) % tarfile.RECORDSIZE)


class _Hashing:
    """A writer that hashes and counts what passes through it to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


class _HashingReader:
    """A reader that hashes and counts what is read through it from ``source``."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def _encrypt_member(
    out: IO[bytes],
    plain: Path,
    media_type: str,
    recipients: Sequence[str],
    mtime: datetime,
) -> FileEntry:
    """Append ``plain`` encrypted as a tar member at ``out``'s position; delete ``plain``.

    The plaintext is read once: hashed as the encryption reads it.
    """
    size = plain.stat().st_size
    name = plain.name + ENCRYPTED_SUFFIX
    start = out.tell()
    # Room for the member's header, written once the encrypted size is known: one block,
    # or more where the name needs a PAX extended header (the size does not change that
    # below tar's 8 GiB, and a header of another length is refused, never written over data).
    room = len(_header(name, likely_encrypted_size(size, len(recipients)), mtime))
    out.write(bytes(room))
    sink = _Hashing(out)
    with plain.open("rb", buffering=_READ_BUFFER) as opened:
        source = _HashingReader(opened)
        encrypt_stream(source, sink, recipients)
    if source.size != size:
        raise BundleError(f"{plain.name} changed while it was encrypted")
    out.write(tarfile.NUL * (-sink.size % tarfile.BLOCKSIZE))
    end = out.tell()
    header = _header(name, sink.size, mtime)
    if len(header) != room:
        raise BundleError(f"the tar header of {name} does not fit the room left for it")
    out.seek(start)
    out.write(header)
    out.seek(end)
    plain.unlink()
    digest = source.digest.hexdigest()
    return FileEntry(plain.name, media_type, size, digest, name, sink.size, sink.digest.hexdigest())


def pack_encrypted(
    target: Path,
    plains: Sequence[tuple[Path, str]],
    recipients: Sequence[str],
    mtime: datetime,
    manifest_of: Callable[[list[FileEntry]], bytes],
    sign: Callable[[bytes], bytes],
) -> tuple[list[FileEntry], bytes]:
    """Write the bundle of ``plains`` (file, media type) to ``target`` (new); flush it.

    The files are encrypted to every age recipient and deleted; ``manifest_of`` makes the
    manifest's bytes from their entries and ``sign`` signs them. Returns the entries and
    the manifest's bytes. Raises BundleError without recipients.
    """
    if not recipients:
        raise BundleError("a release needs at least one researcher recipient")
    guessed = [
        FileEntry(
            plain.name,
            media_type,
            size,
            "0" * 64,
            plain.name + ENCRYPTED_SUFFIX,
            likely_encrypted_size(size, len(recipients)),
            "0" * 64,
        )
        for plain, media_type in plains
        for size in [plain.stat().st_size]
    ]
    room = len(tar_head(manifest_of(guessed), bytes(SIGNATURE_SIZE), mtime))
    with target.open("xb") as out:
        out.seek(room)
        entries = [_encrypt_member(out, p, m, recipients, mtime) for p, m in plains]
        data = out.tell() - room
        manifest = manifest_of(entries)
        head = tar_head(manifest, sign(manifest), mtime)
        if len(head) == room:
            out.write(_trailer(room + data))
            out.seek(0)
            out.write(head)
    if len(head) != room:
        _move_data(target, head, room, data)
    fsync_path(target)
    return entries, manifest


def _move_data(target: Path, head: bytes, room: int, data: int) -> None:
    """Rewrite ``target`` with ``head`` before its ``data`` bytes that start at ``room``."""
    moved = target.with_name(target.name + ".moved")
    with target.open("rb") as source, moved.open("xb") as out:
        out.write(head)
        source.seek(room)
        copy_into(source, out, data)
        out.write(_trailer(len(head) + data))
    os.replace(moved, target)
