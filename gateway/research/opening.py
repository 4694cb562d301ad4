"""Open a verified release bundle as a researcher does: unpack and decrypt its CSV.

Uses the standard ``age`` command where installed (what the researcher guide tells
researchers to run), else the same decryption in Python (pyrage, through ``keys.age``).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import IntegrityCheckFailed
from gateway.keys import age
from gateway.research.bundle import sha256_file


@dataclass(frozen=True, slots=True)
class OpenedRelease:
    """The decrypted CSV, how it was decrypted, and its first lines (header included)."""

    csv: Path
    how: str
    first_lines: list[str]


def open_release(
    bundle: Path, key_file: Path, manifest: Mapping[str, Any], *, shown_rows: int
) -> OpenedRelease:
    """Unpack ``bundle`` beside itself and decrypt its ``data.csv`` with ``key_file``.

    ``manifest`` is the bundle's verified manifest. Raises IntegrityCheckFailed if the
    bundle lacks the encrypted CSV or the plaintext does not match the manifest.
    """
    folder = bundle.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    entry = next(f for f in manifest["files"] if f["name"] == "data.csv")
    encrypted = folder / str(entry["encrypted"]["name"])
    plain = folder / str(entry["name"])
    plain.unlink(missing_ok=True)
    with tarfile.open(bundle, mode="r:") as tar:
        member = tar.extractfile(entry["encrypted"]["name"])
        if member is None:
            raise IntegrityCheckFailed()
        with member, encrypted.open("wb") as sink:
            shutil.copyfileobj(member, sink)
    tool = shutil.which("age")
    if tool is not None:
        subprocess.run(  # noqa: S603  (a fixed program and arguments, no shell)
            [tool, "-d", "-i", str(key_file), "-o", str(plain), str(encrypted)], check=True
        )
        how = f"age -d -i {key_file} -o {plain} {encrypted}"
    else:
        age.decrypt_file(encrypted, plain, key_file)
        how = "pyrage (age is niet geïnstalleerd; apt-get install age)"
    if sha256_file(plain) != (entry["sha256"], entry["bytes"]):
        raise IntegrityCheckFailed()
    with plain.open(encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in itertools.islice(handle, shown_rows + 1)]
    return OpenedRelease(plain, how, lines)
