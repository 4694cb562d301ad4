"""Field encryption: round trip, and every moved, altered or truncated ciphertext fails opaquely."""

from __future__ import annotations

import pytest

from gateway.errors import IntegrityCheckFailed, InvalidInputError, UnknownKeyError
from gateway.keys import KeyRing
from gateway.keys.fields import OVERHEAD, blob_version, field_associated_data

BSN = b"123456782"


def assert_opaque(info: pytest.ExceptionInfo[IntegrityCheckFailed]) -> None:
    assert str(info.value) == "integrity check failed"
    assert info.value.__cause__ is not None  # chained with `from`, for the logs only


def test_round_trip_with_fresh_nonce_each_time(ring: KeyRing) -> None:
    assert ring.create_case_key("case-1") == 1
    first = ring.seal_field("case-1", "rec-1", "bsn", BSN)
    second = ring.seal_field("case-1", "rec-1", "bsn", BSN)
    assert first != second
    assert len(first) == len(BSN) + OVERHEAD
    assert BSN not in first
    assert blob_version(first) == 1
    assert ring.open_field("case-1", "rec-1", "bsn", first) == BSN
    assert ring.open_field("case-1", "rec-1", "bsn", second) == BSN
    empty = ring.seal_field("case-1", "rec-1", "note", b"")
    assert ring.open_field("case-1", "rec-1", "note", empty) == b""


def test_the_associated_data_is_the_documented_one() -> None:
    # What every stored blob was sealed with: a change here makes stored fields unreadable.
    assert field_associated_data("case-1", "rec-1", "bsn", 1) == (
        b"riec-gateway/field/v1"
        b"\x00\x00\x00\x06case-1"
        b"\x00\x00\x00\x05rec-1"
        b"\x00\x00\x00\x03bsn"
        b"\x00\x00\x00\x01"
    )


def test_a_rows_fields_sealed_together_open_one_by_one_and_back(ring: KeyRing) -> None:
    ring.create_case_key("case-1")
    values = {"bsn": BSN, "name": b"Jan Jansen", "note": b""}
    together = ring.seal_fields("case-1", "rec-1", values)
    assert {f: ring.open_field("case-1", "rec-1", f, b) for f, b in together.items()} == values
    apart = {f: ring.seal_field("case-1", "rec-1", f, v) for f, v in values.items()}
    assert ring.open_fields("case-1", "rec-1", apart) == values


def test_fields_opened_together_still_fail_when_moved(ring: KeyRing) -> None:
    ring.create_case_key("case-1")
    sealed = ring.seal_fields("case-1", "rec-1", {"bsn": BSN, "name": b"Jan Jansen"})
    swapped = {"bsn": sealed["name"], "name": sealed["bsn"]}
    for case_id, record_id, blobs in (
        ("case-1", "rec-1", swapped),
        ("case-1", "rec-2", sealed),
    ):
        with pytest.raises(IntegrityCheckFailed) as info:
            ring.open_fields(case_id, record_id, blobs)
        assert_opaque(info)


def test_create_case_key_is_idempotent(ring: KeyRing) -> None:
    assert ring.create_case_key("case-1") == 1
    blob = ring.seal_field("case-1", "r", "f", b"x")
    assert ring.create_case_key("case-1") == 1
    assert ring.open_field("case-1", "r", "f", blob) == b"x"


@pytest.mark.parametrize(
    ("case_id", "record_id", "field"),
    [
        ("case-1", "rec-2", "bsn"),  # another row
        ("case-1", "rec-1", "name"),  # another field
        ("case-2", "rec-1", "bsn"),  # another case (and key)
        ("case-1", "rec-1bsn", ""),  # the same bytes split differently
    ],
)
def test_ciphertext_moved_elsewhere_fails(
    ring: KeyRing, case_id: str, record_id: str, field: str
) -> None:
    ring.create_case_key("case-1")
    ring.create_case_key("case-2")
    blob = ring.seal_field("case-1", "rec-1", "bsn", BSN)
    with pytest.raises(IntegrityCheckFailed) as info:
        ring.open_field(case_id, record_id, field, blob)
    assert_opaque(info)


def test_swapping_two_rows_fails_both_ways(ring: KeyRing) -> None:
    ring.create_case_key("case-1")
    a = ring.seal_field("case-1", "rec-a", "bsn", b"111222333")
    b = ring.seal_field("case-1", "rec-b", "bsn", b"444555666")
    for record_id, blob in (("rec-a", b), ("rec-b", a)):
        with pytest.raises(IntegrityCheckFailed):
            ring.open_field("case-1", record_id, "bsn", blob)


def test_every_single_byte_change_fails(ring: KeyRing) -> None:
    ring.create_case_key("case-1")
    blob = ring.seal_field("case-1", "rec-1", "name", b"Jan Jansen")
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(IntegrityCheckFailed) as info:
            ring.open_field("case-1", "rec-1", "name", bytes(tampered))
        assert str(info.value) == "integrity check failed"


@pytest.mark.parametrize("cut", [0, 1, 5, OVERHEAD - 1])
def test_truncated_blobs_fail(ring: KeyRing, cut: int) -> None:
    ring.create_case_key("case-1")
    blob = ring.seal_field("case-1", "rec-1", "name", b"Jan Jansen")
    with pytest.raises(IntegrityCheckFailed):
        ring.open_field("case-1", "rec-1", "name", blob[:cut])


def test_a_version_the_ring_does_not_hold_fails(ring: KeyRing) -> None:
    ring.create_case_key("case-1")
    blob = bytearray(ring.seal_field("case-1", "rec-1", "name", b"x"))
    blob[1:5] = (7).to_bytes(4, "big")
    with pytest.raises(IntegrityCheckFailed):
        ring.open_field("case-1", "rec-1", "name", bytes(blob))


def test_a_case_without_a_key_is_unknown_not_an_integrity_failure(ring: KeyRing) -> None:
    with pytest.raises(UnknownKeyError, match="no key for case case-9"):
        ring.seal_field("case-9", "rec-1", "name", b"x")


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden", "x" * 129, "case 1"])
def test_case_ids_that_could_escape_the_folder_are_refused(ring: KeyRing, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="case id must be"):
        ring.create_case_key(bad)
