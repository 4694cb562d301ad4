"""What the agreement's linkage and withdrawal terms change in a release.

- **Unlinked** releases (``linkage: unlinked``): every row is checked on its own
  (``rowwise``: each row a person of its own, a row in a class of fewer than k rows is
  suppressed) and each released pseudonym cell gets a fresh random value (``fresh``),
  new in every release, so no history can be followed within or across releases.
- **Withdrawals and the previous release**: pseudonyms are stable across a project's
  releases, so comparing the release before a withdrawal with the one after would show
  which pseudonym vanished (or lost its questionnaire rows). In each quasi-identifier
  class of a withdrawn respondent, the respondent and a stable choice of more people
  (2k, see ``redraw_tags``) are therefore *re-drawn*: their pseudonyms are replaced by
  a keyed HMAC of the old pseudonym, the class and the number of withdrawals in it. The
  difference between the releases then shows more than k people of the class changing
  pseudonyms, not the one who withdrew; later releases keep the re-drawn pseudonyms
  until the class sees another withdrawal.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gateway.research.class_counter import ClassKey, node_parts
from gateway.research.disclosure import Lattice, Node, PersonPairs
from gateway.research.person_links import Int64s, People, distinct_sorting
from gateway.research.pseudonyms import Pseudonymiser

Flags = npt.NDArray[np.bool_]
FRESH_BYTES = 16
"""Random bytes of a fresh per-row pseudonym (32 hex characters, as the HMAC's)."""
_SEP = "\x1e"  # never part of a pseudonym or a generalised value
_SEP_SCALAR = pa.scalar(_SEP, pa.string())  # typed: no type inference per call


def rowwise(pairs: PersonPairs) -> PersonPairs:
    """Return the pairs with every row a person of its own (withdrawn rows left out)."""
    counted = pairs.person >= 0
    rows = pairs.rows[counted]
    classes = np.repeat(pairs.classes[counted], rows)
    return PersonPairs(
        classes,
        np.arange(len(classes), dtype=np.int64),
        np.ones(len(classes), dtype=np.int64),
        len(classes),
        pairs.keys,
        rows_only=True,
    )


def node_classes(
    keys: Sequence[ClassKey], lattice: Lattice, node: Node, count: int | None = None
) -> tuple[Int64s, list[ClassKey]]:
    """Return, per finest class, its dense class id at ``node`` over the first ``count``
    attributes, and the class keys by id."""
    return node_parts(keys, lattice.positions(node)[:count])


def fresh(column: pa.Array) -> pa.Array:
    """Return ``column`` with every non-null cell replaced by a fresh random pseudonym."""
    n = len(column)
    if n == 0:
        return column
    width = 2 * FRESH_BYTES
    data = os.urandom(FRESH_BYTES * n).hex().encode()
    offsets = np.arange(0, width * n + 1, width, dtype=np.int32)
    values = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    return pc.if_else(pc.is_valid(column), values, pa.scalar(None, pa.string()))


@dataclass(frozen=True)
class Redraw:
    """The re-draw tags as arrays: each person's tag number (-1: none) and the tag texts."""

    tag_of: Int64s
    texts: pa.Array

    @property
    def people(self) -> int:
        """How many people are re-drawn."""
        return int((self.tag_of >= 0).sum())


def redraw_tags(
    pairs: PersonPairs,
    qi_of_class: Int64s,
    qi_keys: Sequence[ClassKey],
    touched: Flags,
    stable: Int64s,
    others: int,
) -> Redraw | None:
    """Return the re-draw tags of the withdrawn and ``others`` people in each of their classes.

    ``pairs`` must carry every person's number (withdrawn people included, not -2);
    ``touched`` flags, per person number, who withdrew (whether they leave entirely or
    only lose their questionnaire rows); ``stable`` is a number per person that is the
    same in every release (from their pseudonyms). In each QI class holding a withdrawn
    person, the withdrawn and the ``others`` people with the lowest score (a mix of
    their stable number and the class's tag) are re-drawn: the difference between two
    releases then shows at least ``others`` + 1 people of the class changing pseudonyms.
    A tag names the class and its number of withdrawn people, so it (and the choice) is
    the same in every later release until the class sees another withdrawal. A person
    chosen in several classes gets one tag of them all. None when nobody withdrew.
    """
    known = pairs.person >= 0
    if known.all():  # the usual case: no filtered copies of a million pairs
        person, qi = pairs.person, qi_of_class[pairs.classes]
    else:
        person, qi = pairs.person[known], qi_of_class[pairs.classes[known]]
    del known
    hit = touched[person]
    if not hit.any():
        return None
    width = max(pairs.people, 1)
    withdrawn = np.unique(qi[hit] * width + person[hit]) // width
    classes, counts = np.unique(withdrawn, return_counts=True)
    texts = [
        "|".join("" if part is None else part for part in qi_keys[cls]) + f"#{n}"
        for cls, n in zip(classes.tolist(), counts.tolist(), strict=True)
    ]
    # a flag per class, not ``np.isin``'s sorted merge of every pair; and the distinct
    # pairs by sorting in place, not ``np.unique``'s hash table (the same sorted values)
    in_classes = np.zeros(int(qi.max(initial=-1)) + 1, dtype=np.bool_)
    in_classes[classes] = True
    affected = in_classes[qi]
    pair = distinct_sorting(np.searchsorted(classes, qi[affected]) * width + person[affected])
    del affected
    tag, who = pair // width, pair % width
    # per class: its withdrawn people, and the ``others`` lowest scores of the rest
    salt = np.array([_stable_hash(text) for text in texts], dtype=np.uint64)
    score = _mix(stable[who].astype(np.uint64) ^ salt[tag])
    score[touched[who]] = 0
    order = np.lexsort((score, tag))
    tag, who = tag[order], who[order]
    starts = np.searchsorted(tag, np.arange(len(classes)))
    rank = np.arange(len(tag)) - starts[tag]
    extra = counts[tag]  # the withdrawn sort first (score 0), then ``others`` more
    chosen = rank < extra + others
    pair = distinct_sorting(who[chosen] * len(classes) + tag[chosen])
    who, tag = pair // len(classes), pair % len(classes)
    first = np.r_[True, who[1:] != who[:-1]]
    several = np.zeros(len(who), dtype=np.bool_)
    several[1:] |= ~first[1:]
    several[:-1] |= ~first[1:]
    tag_of = np.full(pairs.people, -1, dtype=np.int64)
    tag_of[who[first & ~several]] = tag[first & ~several]
    # people in several affected classes (few): one tag of all their classes
    joined: dict[int, list[str]] = {}
    for person_id, tag_id in zip(who[several].tolist(), tag[several].tolist(), strict=True):
        joined.setdefault(person_id, []).append(texts[tag_id])
    for person_id, parts in joined.items():
        text = _SEP.join(sorted(parts))
        tag_of[person_id] = len(texts)
        texts.append(text)
    return Redraw(tag_of, pa.array(texts, pa.string()))


def redraw(
    column: pa.Array,
    person: Int64s,
    tags: Redraw,
    pseudonymiser: Pseudonymiser,
    id_type: str,
) -> pa.Array:
    """Return ``column`` with the pseudonyms of tagged people re-drawn (keyed, stable).

    One HMAC per distinct (tag, pseudonym) of the batch; the rest is Arrow.
    """
    tag = tags.tag_of[person]
    hit = (tag >= 0) & np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False))
    if not hit.any():
        return column
    rows = pa.array(np.flatnonzero(hit))
    joined = pc.binary_join_element_wise(
        tags.texts.take(pa.array(tag[hit])), column.take(rows), _SEP_SCALAR
    ).dictionary_encode()
    prefix = f"{_SEP}redraw{_SEP}"
    drawn = [pseudonymiser(id_type, prefix + text) for text in joined.dictionary.to_pylist()]
    new = pc.take(pa.array(drawn, pa.string()), joined.indices)
    return pc.replace_with_mask(column, pa.array(hit), new)


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser: spreads the bits of each value (not a secret, a shuffle)."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def stable_numbers(people: People) -> Int64s:
    """Return, per person number, their lowest anchor: the same in every release while the
    person's pseudonyms are (anchors are the first 64 bits of a pseudonym)."""
    lowest = np.full(people.count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(lowest, people.person, people.nodes)
    return lowest
