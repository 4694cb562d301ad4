"""The canonical form of leaves stays byte for byte what ``json.dumps`` wrote before.

Stored leaves are hashed into the tree, so a single byte of difference would make every
stored log fail to verify. These properties compare the encoder with the straightforward
one it replaced (``json.dumps`` after a recursive float check), on varied documents.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.events import (
    AuditEventType,
    canonical_json,
    encode_parsed,
    format_time,
    parse_canonical,
)


def reference_canonical_json(value: Any) -> bytes:
    """The implementation before: a recursive float check, then ``json.dumps``."""

    def reject(item: Any) -> None:
        if isinstance(item, float):
            raise TypeError("floats have no canonical form in audit events")
        if isinstance(item, dict):
            for member in item.values():
                reject(member)
        elif isinstance(item, list | tuple):
            for member in item:
                reject(member)

    reject(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Colour(StrEnum):
    RED = "rood"


class Level(IntEnum):
    HIGH = 3


class Ratio(float):
    """A float subclass: still a float, still refused."""


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(),  # every code point: quotes, control characters, astral, lone surrogates
    st.sampled_from([Colour.RED, Level.HIGH, AuditEventType.RECORD_SHARE]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=6),
    ),
    max_leaves=40,
)
with_floats = st.recursive(
    st.one_of(scalars, st.floats(), st.floats().map(Ratio)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=6),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_canonical_json_writes_the_same_bytes_as_before(document: Any) -> None:
    assert canonical_json(document) == reference_canonical_json(document)


@settings(max_examples=400, deadline=None)
@given(with_floats)
def test_canonical_json_refuses_exactly_what_it_refused_before(document: Any) -> None:
    try:
        expected: bytes | None = reference_canonical_json(document)
    except TypeError:
        expected = None
    if expected is None:
        with pytest.raises(TypeError):
            canonical_json(document)
    else:
        assert canonical_json(document) == expected


@pytest.mark.parametrize(
    "document",
    [
        1.0,
        {"refs": {"score": 0.5}},
        {"a": [1, 2, [3, (4, float("nan"))]]},
        {"a": {"b": {"c": Ratio(2)}}},
        [None, "x", {"y": float("inf")}],
    ],
)
def test_a_float_anywhere_in_an_event_is_refused(document: Any) -> None:
    with pytest.raises(TypeError, match="floats have no canonical form"):
        canonical_json(document)


def test_a_cycle_is_refused_rather_than_encoded() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(RecursionError):
        canonical_json({"a": looped})


@settings(max_examples=300, deadline=None)
@given(documents.filter(lambda d: isinstance(d, dict)), st.integers(0, 2**62))
def test_a_parsed_leaf_with_its_index_encodes_as_canonical_json(
    document: dict[str, Any], index: int
) -> None:
    parsed = parse_canonical(canonical_json(document).decode())
    parsed["index"] = index
    assert encode_parsed(parsed) == reference_canonical_json({**document, "index": index})


@pytest.mark.parametrize("text", ['{"a":1.5}', '{"a":[1e3]}', '{"a":NaN}', "-Infinity"])
def test_parsing_a_stored_leaf_refuses_floats(text: str) -> None:
    with pytest.raises(ValueError, match="no canonical form"):
        parse_canonical(text)


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
)
def test_format_time_writes_what_strftime_wrote(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    expected = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_time(aware) == expected
