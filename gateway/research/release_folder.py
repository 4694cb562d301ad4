"""The releases folder: bundles appear there only for releases the database recorded.

``make_release`` publishes into ``<folder>/.pending/``. The service then records the
release and its audit entry in one transaction, and only after that commit moves the
bundle to ``<folder>/<release id>.tar``. The commit is the point of no return:

- a crash before it leaves at most a pending bundle without a record, which the next
  release (or download) deletes: no release happened;
- a crash after it leaves a record whose bundle is still pending, which the next
  release (or download) moves into place: the release happened and is completed.

Every release and every recovery holds an exclusive lock on ``<folder>/.release.lock``,
so recovery never touches a bundle whose release is still running.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.research.bundle import BUNDLE_SUFFIX, fsync_path, publish

PENDING = ".pending"
LOCK_NAME = ".release.lock"


def pending_dir(folder: Path) -> Path:
    """Return the folder ``make_release`` publishes into before the release is recorded."""
    return folder / PENDING


def final_path(folder: Path, release_id: str) -> Path:
    """Return where the bundle of a recorded release lives."""
    return folder / f"{release_id}{BUNDLE_SUFFIX}"


@contextmanager
def release_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's release lock (creating the private folders if needed)."""
    pending_dir(folder).mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    fd = os.open(folder / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def finish(pending: Path, final: Path) -> None:
    """Move a recorded release's bundle from the pending folder to its final name."""
    if not final.exists():
        publish(pending, final)
    pending.unlink()
    fsync_path(pending.parent)


def recover(folder: Path, is_recorded: Callable[[str], bool]) -> dict[str, list[str]]:
    """Complete or discard what an interrupted release left; call with the lock held.

    Returns the release ids moved into place (``completed``) and removed (``discarded``).
    """
    done: dict[str, list[str]] = {"completed": [], "discarded": []}
    waiting = pending_dir(folder)
    if not waiting.is_dir():
        return done
    for path in sorted(waiting.glob(f"*{BUNDLE_SUFFIX}")):
        release_id = path.name.removesuffix(BUNDLE_SUFFIX)
        if is_recorded(release_id):
            finish(path, final_path(folder, release_id))
            done["completed"].append(release_id)
        else:
            path.unlink()
            done["discarded"].append(release_id)
    return done
