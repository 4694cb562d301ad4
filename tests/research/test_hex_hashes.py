"""The 64-bit link hash of a pseudonym equals its definition: the salted first 16 hex digits.

``reference`` is the former implementation (cut each value to 16 characters, check them
with a regular expression, parse them); the numpy version reads the bytes in place and
must give the same hashes, the same nulls, and None whenever a value is not hex.
"""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gateway.research.extract_input import _hex_hashes, pseudonym_hashes


def reference(pseudonyms: pa.Array, kind: str) -> list[int | None] | None:
    """The salted first 64 bits of each hex pseudonym; None if any is not (16+ hex digits)."""
    salt = int.from_bytes(hashlib.blake2b(kind.encode(), digest_size=8).digest(), "big")
    salt &= 0x7FFF_FFFF_FFFF_FFFF
    out: list[int | None] = []
    for value in pseudonyms.to_pylist():
        if value is None:
            out.append(None)
            continue
        head = value[:16]
        if len(head) != 16 or any(c not in "0123456789abcdef" for c in head):
            return None
        number = int(head, 16) ^ salt
        out.append(number - (1 << 64) if number >= 1 << 63 else number)
    return out


def _value(rng: random.Random, odd: float) -> str | None:
    draw = rng.random()
    if draw < 0.1:
        return None
    text = "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice((32, 64))))
    if draw < 0.1 + odd:
        spoilt = rng.choice(["short", "upper", "unicode", "space", "late"])
        if spoilt == "short":
            return text[: rng.randrange(16)]
        if spoilt == "upper":
            return text.upper()
        if spoilt == "unicode":
            return "é" + text[1:]
        if spoilt == "space":
            return text[:7] + " " + text[8:]
        return text[:20] + "XYZ"  # not hex after the 16th digit: still a hash
    return text


@pytest.mark.parametrize("seed", range(40))
def test_hex_hashes_equal_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    odd = rng.choice([0.0, 0.0, 0.01, 0.2])
    values = [_value(rng, odd) for _ in range(rng.randrange(1, 300))]
    array = pa.array(["ab" * 32, *values, "y"], pa.string())
    start = rng.randrange(2)
    array = array.slice(start, len(values) + (1 - start))  # offsets not from 0
    if array.null_count == len(array):
        return
    expected = reference(array, "bsn")
    got = _hex_hashes(array, "bsn")
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert got.to_pylist() == expected


def test_a_non_hex_pseudonym_falls_back_to_a_python_hash() -> None:
    pseudonyms = pa.array(["0123456789abcdef00", None, "plain-text"], pa.string())
    hashes = pseudonym_hashes(pseudonyms, "bsn")
    assert hashes.is_valid().to_pylist() == [True, False, True]
    assert pc.count_distinct(hashes).as_py() == 2
