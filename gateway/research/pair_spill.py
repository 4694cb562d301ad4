"""Pass 1's (finest class, subject) pairs, spilled to the work folder and counted per person after.

Pass 1 cannot count classes in people: who is one person is known only once every row
has been linked (``PersonLinks.resolve``). ``ClassPairSpill`` therefore writes each row's
finest class and subject hash (13 bytes) to one of ``PARTS`` files in the release's
private work folder, chosen by the class, instead of holding the pairs in memory; after
pass 1, ``person_pairs`` reads one file at a time, maps the subjects to people and
keeps the distinct (class, person) pairs with their row counts. Every class lies in one
file, so memory holds one file's rows and the result, whatever the number of rows.

The pairs are those of ``PersonPairs.of(ClassCounter, people)`` with the pairs of one
person's several subjects in one class merged (rows summed), sorted by file, then class,
then person: the disclosure check and the re-draw count pairs as sets, so they decide
alike (``tests/research/test_release_equivalence.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.class_counter import ClassKey
from gateway.research.disclosure import PersonPairs
from gateway.research.person_links import People

PARTS = 32
"""Files the pairs are spread over, by class: one is read at a time after pass 1."""
RECORD = np.dtype([("cls", "<i4"), ("known", "u1"), ("subject", "<i8")])
"""One spilled row: its finest class, whether it has a subject, the subject's hash."""


class ClassPairSpill:
    """Each row's (finest class, subject hash), written to ``PARTS`` files in ``folder``.

    The files are closed with ``stack`` and removed as they are read (the work folder
    is removed on failure as well).
    """

    def __init__(self, folder: Path, stack: ExitStack, parts: int = PARTS) -> None:
        self.paths = [folder / f"class-pairs-{i:02d}.bin" for i in range(parts)]
        self._files = [stack.enter_context(open(path, "wb")) for path in self.paths]  # noqa: SIM115

    def add(self, class_ids: pa.Array, subjects: pa.Array) -> None:
        """Write one batch: each row's class id (int32) and subject hash (int64, or null)."""
        count = len(class_ids)
        if count == 0:
            return
        records = np.empty(count, dtype=RECORD)
        records["cls"] = np.asarray(class_ids.to_numpy(zero_copy_only=False), np.int32)
        records["known"] = np.asarray(pc.is_valid(subjects).to_numpy(zero_copy_only=False))
        records["subject"] = np.asarray(
            pc.fill_null(subjects, 0).to_numpy(zero_copy_only=False), np.int64
        )
        part = records["cls"] % len(self._files)
        # a stable sort of small integers is a radix sort
        order = np.argsort(
            part.astype(np.uint8 if len(self._files) <= 256 else np.int64), kind="stable"
        )
        records = records[order]
        offset = 0
        for file, rows in zip(
            self._files, np.bincount(part, minlength=len(self._files)).tolist(), strict=True
        ):
            if rows:
                file.write(records[offset : offset + rows].tobytes())
                offset += rows

    def person_pairs(self, people: People, keys: Sequence[ClassKey]) -> PersonPairs:
        """Return the distinct (class, person) pairs with their rows; remove the files.

        A subject's person is ``people.of`` it (its withdrawn flags are not applied); a
        row without a subject belongs to nobody (person -1).
        """
        for file in self._files:
            file.close()
        width = people.count + 1  # person -1 (nobody) is coded 0
        classes, person, rows = [], [], []
        for path in self.paths:
            records = np.fromfile(path, dtype=RECORD)
            path.unlink()
            if len(records) == 0:
                continue
            known = records["known"].astype(np.bool_)
            who = np.zeros(len(records), dtype=np.int64)
            subjects = np.ascontiguousarray(records["subject"])
            who[known] = people.of(subjects[known]) + 1
            del subjects, known
            key = records["cls"].astype(np.int64)
            del records
            key *= width
            key += who
            del who
            key.sort()
            first = np.empty(len(key), dtype=np.bool_)
            first[0] = True
            np.not_equal(key[1:], key[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            del first
            rows.append(np.diff(np.append(starts, len(key))).astype(np.int64))
            key = key[starts]
            classes.append((key // width).astype(np.int32))
            person.append(key % width - 1)
        return PersonPairs(
            np.concatenate([np.empty(0, np.int32), *classes]),
            np.concatenate([np.empty(0, np.int64), *person]),
            np.concatenate([np.empty(0, np.int64), *rows]),
            people.count,
            keys,
        )
