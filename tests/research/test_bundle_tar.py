"""The bundle's tar is written without tarfile's copy loop: the same bytes as tarfile writes."""

from __future__ import annotations

import errno
import os
import random
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.research import bundle
from gateway.research.bundle import member_info, write_tar

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def tarfile_bytes(target: Path, members: Sequence[tuple[str, Path]], mtime: datetime) -> bytes:
    """The bundle's tar as ``tarfile`` writes it (the former implementation)."""
    with (
        target.open("xb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, path in members:
            with path.open("rb") as handle:
                tar.addfile(member_info(name, path, mtime), handle)
    return target.read_bytes()


def random_members(folder: Path, rng: random.Random) -> list[tuple[str, Path]]:
    sizes = [0, 1, 511, 512, 513, 10240, 10239, 20480 + 1, rng.randrange(1, 300_000)]
    members = []
    for number in range(rng.randrange(1, 6)):
        name = rng.choice(["manifest.json", "manifest.sig", "data.csv.age", f"f{number}.bin"])
        path = folder / f"member-{number}"
        path.write_bytes(rng.randbytes(rng.choice(sizes)))
        members.append((name, path))
    return members


@pytest.mark.parametrize("seed", range(30))
def test_the_same_bytes_as_tarfile(tmp_path: Path, seed: int) -> None:
    members = random_members(tmp_path, random.Random(seed))
    write_tar(tmp_path / "new.tar", members, AT)
    assert (tmp_path / "new.tar").read_bytes() == tarfile_bytes(tmp_path / "old.tar", members, AT)


def test_falls_back_to_a_buffered_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the kernel cannot copy between the files, the same bytes are copied in Python."""

    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    members = random_members(tmp_path, random.Random(7))
    monkeypatch.setattr(os, "copy_file_range", refuse)
    write_tar(tmp_path / "new.tar", members, AT)
    assert (tmp_path / "new.tar").read_bytes() == tarfile_bytes(tmp_path / "old.tar", members, AT)


def test_a_file_shorter_than_its_size_fails(tmp_path: Path) -> None:
    """A member that shrank after its size went into the header is not padded silently."""
    (tmp_path / "member").write_bytes(b"x" * 100)
    with (
        (tmp_path / "member").open("rb") as source,
        (tmp_path / "out").open("wb") as target,
        pytest.raises(EOFError),
    ):
        bundle.copy_into(source, target, 200)
