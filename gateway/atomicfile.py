"""Files written for a user appear whole under their final name, or not at all.

Each file is written under a hidden temporary name in its target folder
(``.NAME.XXXXXXXX.part``), fsynced, renamed to its final name (one atomic step on
POSIX) and the folder is fsynced, so that the rename itself survives a crash. A process
killed halfway leaves at most such a ``.part`` file, never a truncated file under the
final name; a reader sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PUBLIC_MODE = 0o644
PRIVATE_MODE = 0o600
PART_SUFFIX = ".part"


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename or a new name in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush the contents of the file at ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temporary: Path, final: Path, *, overwrite: bool = True) -> Path:
    """Give the (already fsynced) file ``temporary`` the name ``final``; return ``final``.

    With ``overwrite=False`` an existing ``final`` is left alone and FileExistsError is
    raised (the temporary file is removed either way on failure).
    """
    try:
        if overwrite:
            os.replace(temporary, final)
        else:
            os.link(temporary, final)  # fails if final exists: no check-then-write race
            temporary.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_dir(final.parent)
    return final


def _temporary(final: Path) -> tuple[int, Path]:
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=PART_SUFFIX)
    return fd, Path(name)


def write_file(
    path: Path, data: bytes | str, *, mode: int = PUBLIC_MODE, overwrite: bool = True
) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` atomically with ``mode``; return ``path``.

    Raises FileExistsError when ``overwrite`` is False and ``path`` exists, OSError when
    the folder cannot be written.
    """
    body = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return publish(temporary, path, overwrite=overwrite)


def copy_file(
    source: Path, target: Path, *, mode: int = PUBLIC_MODE, overwrite: bool = True
) -> Path:
    """Copy ``source`` to ``target`` atomically with ``mode``; return ``target``.

    Raises FileExistsError when ``overwrite`` is False and ``target`` exists, OSError when
    ``source`` cannot be read or the folder cannot be written.
    """
    fd, temporary = _temporary(target)
    os.close(fd)
    try:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, mode)
        fsync_file(temporary)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return publish(temporary, target, overwrite=overwrite)


def remove_leftovers(folder: Path, name: str) -> None:
    """Delete the ``.part`` files a killed writer of ``folder / name`` left behind."""
    for leftover in folder.glob(f".{name}.*{PART_SUFFIX}"):
        with contextlib.suppress(OSError):
            leftover.unlink()
