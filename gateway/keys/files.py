"""Private files of the key ring: owner-only atomic writes, refused loose modes, one lock.

Every file is written to a temporary name in the same folder (mode 0600, fsynced) and then
renamed into place, so a reader sees the old or the new file, never half of one. New
files are linked into place exclusively, so two processes creating the same key cannot
both win: the loser re-reads what the winner wrote. Read-modify-write changes (rotate,
shred, rewrap) hold an exclusive ``flock`` on ``keys_dir/lock`` plus a per-process
thread lock, because ``flock`` alone does not exclude threads of one process that open
the file separately on every platform.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from gateway.keys.errors import KeyRingError

FILE_MODE = 0o600
DIR_MODE = 0o700
LOOSE_BITS = stat.S_IRWXG | stat.S_IRWXO
LOCK_NAME = "lock"
_TMP_PREFIX = ".tmp-"

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def loose_permission_error(path: Path, keys_dir: Path) -> KeyRingError:
    """Return the error for a key file or folder that group or others can access."""
    return KeyRingError(
        f"key ring file {path} is accessible by group or others; "
        f"refusing to use it (run `chmod -R go-rwx {keys_dir}`)",
        path=str(path),
    )


def ensure_private_dir(path: Path, keys_dir: Path) -> None:
    """Create ``path`` (mode 0700) if absent; raise KeyRingError if it is group/other-accessible."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is reduced by the umask, never widened
    except FileExistsError:
        pass
    check_private_dir(path, keys_dir)


def check_private_dir(path: Path, keys_dir: Path) -> None:
    """Raise KeyRingError unless ``path`` is a real folder that only its owner can access."""
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise KeyRingError(
            f"no key ring in {keys_dir}; run `gateway init` to create it", path=str(path)
        ) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise KeyRingError(f"key ring path {path} is not a folder", path=str(path))
    if st.st_mode & LOOSE_BITS:
        raise loose_permission_error(path, keys_dir)


def read_private(path: Path, keys_dir: Path) -> tuple[bytes, os.stat_result] | None:
    """Return the bytes and stat of a private file, or None if it does not exist.

    Raises KeyRingError if the file is a symlink, not a regular file, or readable by
    group or others.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyRingError(f"key ring file {path} is a symlink; refusing it") from exc
        raise KeyRingError(f"cannot read key ring file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyRingError(f"key ring path {path} is not a regular file")
        if st.st_mode & LOOSE_BITS:
            raise loose_permission_error(path, keys_dir)
        return handle.read(), st


def file_signature(st: os.stat_result) -> tuple[int, int, int]:
    """Return what changes whenever a key file is replaced: inode, mtime (ns), size."""
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(folder: Path, data: bytes) -> Path:
    tmp = folder / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` only if it does not exist; return False if it did.

    The file appears complete or not at all (written aside, then hard-linked into place).
    """
    tmp = _write_temp(path.parent, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def replace(path: Path, data: bytes) -> None:
    """Atomically replace (or create) ``path`` with ``data``, owner-only."""
    tmp = _write_temp(path.parent, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def replace_destroying_old(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, then overwrite the old file's bytes with random data.

    Best effort: journaling, copy-on-write file systems and SSDs may keep old blocks. What
    really protects a destroyed key is that its wrapped copy was encrypted under the
    master key, so no copy outside the ring (e.g. a backup) is readable without that key.
    """
    old_fd: int | None = None
    with contextlib.suppress(FileNotFoundError):
        old_fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        replace(path, data)
        if old_fd is not None:
            size = os.fstat(old_fd).st_size
            os.pwrite(old_fd, secrets.token_bytes(size), 0)
            os.fsync(old_fd)
    finally:
        if old_fd is not None:
            os.close(old_fd)


@contextlib.contextmanager
def ring_lock(keys_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the ring's lock across processes sharing the folder (and threads here).

    Creating a key takes it shared (creations exclude a rewrap, not each other); rotate,
    shred and rewrap take it exclusive.
    """
    key = str(keys_dir.resolve())
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(key, threading.Lock())
    with thread_lock:
        fd = os.open(
            keys_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def list_json(folder: Path) -> list[Path]:
    """Return the ``*.json`` key files in ``folder`` (none if it does not exist), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
