"""The one-file bundle a researcher receives: write it crash-safely, verify it, open it.

A bundle is an uncompressed tar with exactly these members, in this order:
``manifest.json``, ``manifest.sig`` (raw Ed25519 signature of the manifest bytes),
then each data file encrypted with age to every researcher (``data.csv.age``,
``data.parquet.age``). A researcher can open it with standard tools::

    tar -xf RELEASE.tar
    age -d -i key.txt -o data.csv data.csv.age

Crash safety: all work happens in a private ``.extract-tmp-*`` folder inside the
destination folder, holding an exclusive ``flock`` for as long as its process lives.
The bundle appears under its final name by one atomic hard link at the very end, so a
crash or kill at any moment leaves no bundle under a final name. The next run deletes
leftover work folders whose lock is free (their process is gone). Only what survives
the work folder is flushed to disk: the packed bundle before it is linked, then the
destination folder. The plaintext data files are read back from the page cache,
encrypted straight into the bundle (``gateway.research.bundle_pack``) and deleted; a
crash loses nothing by not flushing them, and flushing would force the plaintext onto
the disk (unflushed, the kernel may still write it back; the work folder is private and
removed either way). ``write_tar`` writes the same tar from member files.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from gateway import atomicfile
from gateway.errors import ConflictError, IntegrityCheckFailed
from gateway.keys import age, signing
from gateway.keys.signing import SIGNATURE_SIZE, verify
from gateway.research.errors import BundleError
from gateway.research.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    SIGNATURE_NAME,
    member_names,
    parse_manifest,
)

WORKDIR_PREFIX = ".extract-tmp-"
BUNDLE_SUFFIX = ".tar"
STALE_UNLOCKED_SECONDS = 60
"""A work folder without a lock is only taken for a leftover once it is this old."""
MAX_MEMBERS = 16
_CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    """Return the hex SHA-256 and the size of the file at ``path``."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def workdir(destination: Path) -> Iterator[Path]:
    """Yield a fresh private (0700) work folder inside ``destination``, locked while in use.

    The folder is removed when the block ends, whether it succeeded or failed.
    """
    path = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=destination))
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a cleaner looks at the empty folder
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def clean_stale_workdirs(destination: Path, *, now: float | None = None) -> list[str]:
    """Delete work folders left by crashed or killed runs; return their names.

    A folder whose lock another live process holds is left alone.
    """
    removed: list[str] = []
    if not destination.is_dir():
        return removed
    current = time.time() if now is None else now
    for entry in destination.iterdir():
        if not entry.name.startswith(WORKDIR_PREFIX) or entry.is_symlink() or not entry.is_dir():
            continue
        fd = os.open(entry, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run owns it
            if current - entry.stat().st_mtime < STALE_UNLOCKED_SECONDS and not any(
                entry.iterdir()
            ):
                continue  # may be a run between mkdtemp and flock; wait until it is old
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        finally:
            os.close(fd)
    return removed


def copy_into(source: IO[bytes], target: IO[bytes], size: int) -> None:
    """Append ``size`` bytes of ``source`` to ``target`` in the kernel (no copy through Python)."""
    target.flush()
    left = size
    try:
        while left:
            copied = os.copy_file_range(source.fileno(), target.fileno(), left)
            if not copied:
                raise EOFError("file shorter than its size")
            left -= copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        shutil.copyfileobj(source, target, _CHUNK)  # the same bytes, through a buffer


def member_info(name: str, path: Path, mtime: datetime) -> tarfile.TarInfo:
    """Return the tar header of a bundle member: its size, the release's time, no owner."""
    return sized_member_info(name, path.stat().st_size, mtime)


def sized_member_info(name: str, size: int, mtime: datetime) -> tarfile.TarInfo:
    """Return the tar header of a bundle member of ``size`` bytes (see ``member_info``)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime.timestamp())
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar(target: Path, members: Sequence[tuple[str, Path]], mtime: datetime) -> None:
    """Write an uncompressed tar of ``members`` (name, file) in order, deterministic headers.

    The same bytes as ``tarfile`` in PAX format writes (headers, data padded to blocks,
    two zero blocks and padding to a whole record), but the data is copied from file to
    file in the kernel (``copy_file_range``) rather than read into Python and written back.
    """
    written = 0
    with target.open("xb") as out:
        for name, path in members:
            info = member_info(name, path, mtime)
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            padding = -info.size % tarfile.BLOCKSIZE
            out.write(header)
            with path.open("rb") as handle:
                copy_into(handle, out, info.size)
            out.write(tarfile.NUL * padding)
            written += len(header) + info.size + padding
        end = 2 * tarfile.BLOCKSIZE
        out.write(tarfile.NUL * (end + -(written + end) % tarfile.RECORDSIZE))
    fsync_path(target)


def publish(temporary: Path, final: Path) -> None:
    """Make ``temporary`` appear as ``final`` in one atomic step; never overwrite.

    Raises ConflictError if ``final`` already exists.
    """
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise ConflictError(
            f"{final.name} already exists; a release is never overwritten"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if final.exists():  # no hard links here: rename, after checking
            raise ConflictError(f"{final.name} already exists") from None
        os.rename(temporary, final)
    fsync_path(final.parent)


class AuditInclusionCheck(Protocol):
    """Checks that a release's manifest hash is in the gateway's audit log.

    Connected by the gateway once the audit log records releases; it raises
    IntegrityCheckFailed if the release is not (provably) in the log.
    """

    def __call__(self, manifest: Mapping[str, Any], manifest_sha256: str) -> None:
        """Return if the release is provably logged; raise IntegrityCheckFailed otherwise."""
        ...


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature, member list and checksums all verified."""

    manifest: dict[str, Any]
    manifest_sha256: str
    audit_checked: bool


def parse_public_key(text: str) -> bytes:
    """Return the 32-byte Ed25519 public key in ``text``, in any form the gateway prints.

    See ``gateway.keys.signing.parse_public_key``. Raises InvalidInputError otherwise.
    """
    return signing.parse_public_key(text).public_key


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise ValueError("member too large")
    handle = tar.extractfile(member)
    if handle is None:
        raise ValueError("not a regular file")
    with handle:
        return handle.read(limit + 1)


def _hash_member(handle: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    while (member := tar.next()) is not None:
        members.append(member)
        if len(members) > MAX_MEMBERS or not member.isreg():
            raise ValueError("unexpected member")
    return members


def verify_bundle(
    path: Path, public_key: bytes, *, audit_inclusion: AuditInclusionCheck | None = None
) -> VerifiedBundle:
    """Verify the signature, the exact member list and every member's checksum and size.

    Returns the manifest. Raises BundleError if the file cannot be read at all and
    IntegrityCheckFailed (opaque) for any failed check. ``audit_inclusion``, when
    given, is asked to prove that the release is in the audit log.
    """
    if not path.is_file():
        raise BundleError(f"no bundle at {path}")
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = _members(tar)
            names = [m.name for m in members]
            if names[:2] != [MANIFEST_NAME, SIGNATURE_NAME]:
                raise ValueError("manifest and signature must come first")
            manifest_data = _read_member(tar, members[0], MAX_MANIFEST_BYTES)
            signature = _read_member(tar, members[1], SIGNATURE_SIZE)
            if len(signature) != SIGNATURE_SIZE:
                raise ValueError("bad signature size")
            verify(public_key, manifest_data, signature)
            manifest = parse_manifest(manifest_data)
            if manifest["signature"]["key_fingerprint"] != hashlib.sha256(public_key).hexdigest():
                raise ValueError("signed by another key than the manifest names")
            if names != member_names(manifest):
                raise ValueError("members differ from the manifest")
            for member, entry in zip(members[2:], manifest["files"], strict=True):
                handle = tar.extractfile(member)
                if handle is None:
                    raise ValueError("not a regular file")
                with handle:
                    digest, size = _hash_member(handle)
                expected = entry["encrypted"]
                if digest != expected["sha256"] or size != expected["bytes"]:
                    raise ValueError("checksum mismatch")
    except IntegrityCheckFailed:
        raise
    except (tarfile.TarError, ValueError, KeyError, TypeError, EOFError, OSError) as exc:
        raise IntegrityCheckFailed() from exc
    manifest_sha256 = hashlib.sha256(manifest_data).hexdigest()
    if audit_inclusion is not None:
        audit_inclusion(manifest, manifest_sha256)
    return VerifiedBundle(manifest, manifest_sha256, audit_inclusion is not None)


def pinned_public_key(path: Path, fingerprint: str) -> bytes:
    """Return the signing key a bundle names, if its SHA-256 is ``fingerprint`` (hex).

    Only selects the key: ``verify_bundle`` with it then checks the signature. Raises
    BundleError if the file cannot be read, IntegrityCheckFailed (opaque) if the bundle
    names no key or another key than the pinned one.
    """
    if not path.is_file():
        raise BundleError(f"no bundle at {path}")
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = _members(tar)
            if not members or members[0].name != MANIFEST_NAME:
                raise ValueError("manifest must come first")
            manifest = parse_manifest(_read_member(tar, members[0], MAX_MANIFEST_BYTES))
        public_key = base64.b64decode(manifest["signature"]["public_key"], validate=True)
        if hashlib.sha256(public_key).hexdigest() != fingerprint:
            raise ValueError("signed by another key than the pinned one")
    except IntegrityCheckFailed:
        raise
    except (tarfile.TarError, ValueError, KeyError, TypeError, EOFError, OSError) as exc:
        raise IntegrityCheckFailed() from exc
    return public_key


def read_identities(path: Path) -> list[age.Identity]:
    """Return the age X25519 identities in an identity file (``age-keygen`` format).

    Raises BundleError if the file cannot be read or holds no identity.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BundleError(f"cannot read identity file {path}: {exc.strerror}") from None
    identities: list[age.Identity] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        identity = age.parse_identity(text)
        if identity is None:
            raise BundleError(f"{path}:{number}: not an age X25519 identity")
        identities.append(identity)
    if not identities:
        raise BundleError(f"{path}: no age identity found")
    return identities


def open_bundle(
    path: Path,
    public_key: bytes,
    identities: Sequence[age.Identity],
    out_dir: Path,
    *,
    audit_inclusion: AuditInclusionCheck | None = None,
) -> list[Path]:
    """Verify the bundle, then decrypt every data file into ``out_dir``; return the paths.

    Also writes ``manifest.json``. Refuses to overwrite files. Raises
    IntegrityCheckFailed if verification or a decrypted checksum fails, and BundleError
    if the identities are not recipients of the bundle.
    """
    verified = verify_bundle(path, public_key, audit_inclusion=audit_inclusion)
    entries = verified.manifest["files"]
    targets = [out_dir / MANIFEST_NAME, *(out_dir / e["name"] for e in entries)]
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [t.name for t in targets if t.exists()]
    if existing:
        raise ConflictError(f"{out_dir} already holds {', '.join(existing)}; choose another --out")
    written: list[Path] = []
    with workdir(out_dir) as work, tarfile.open(path, mode="r:") as tar:
        for entry in entries:
            member = tar.getmember(entry["encrypted"]["name"])
            handle = tar.extractfile(member)
            if handle is None:
                raise IntegrityCheckFailed()
            encrypted = work / entry["encrypted"]["name"]
            with handle, encrypted.open("xb") as sink:
                shutil.copyfileobj(handle, sink, _CHUNK)
            if sha256_file(encrypted)[0] != entry["encrypted"]["sha256"]:
                raise IntegrityCheckFailed()
            plain = work / entry["name"]
            if not age.decrypt_with(encrypted, plain, identities):
                raise BundleError(
                    "this identity cannot open the bundle: it is not one of its recipients"
                )
            if sha256_file(plain) != (entry["sha256"], entry["bytes"]):
                raise IntegrityCheckFailed()
            encrypted.unlink()
        (work / MANIFEST_NAME).write_bytes(
            _read_member(tar, tar.getmember(MANIFEST_NAME), MAX_MANIFEST_BYTES)
        )
        for entry_name in [MANIFEST_NAME, *(e["name"] for e in entries)]:
            atomicfile.fsync_file(work / entry_name)
            try:
                atomicfile.publish(work / entry_name, out_dir / entry_name, overwrite=False)
            except FileExistsError:
                raise ConflictError(
                    f"{out_dir} already holds {entry_name}; choose another --out"
                ) from None
            written.append(out_dir / entry_name)
    return written
