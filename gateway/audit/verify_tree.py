"""The rebuilt Merkle tree of a verification, and the checks of the stored nodes against it.

``build_levels`` rebuilds every level from the leaf hashes (RFC 9162 node hashes);
``check_nodes`` walks the stored ``audit_nodes`` level by level against them and yields
the first subtree whose stored hash is missing, extra or changed, as a ``Finding`` over
the entries it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlmodel import col

from gateway.audit.merkle import HASH_SIZE, frontier_root, perfect_cover
from gateway.models.audit import AuditNode

NO_ENTRY = 1 << 62


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: what is wrong, and the entries ``[start, end)`` it may concern."""

    message: str
    start: int = NO_ENTRY
    end: int = NO_ENTRY

    def sort_key(self) -> tuple[int, int]:
        """Earliest end first, then the narrowest range."""
        return (self.end, self.end - self.start)


def build_levels(leaves: bytes) -> list[bytes]:
    """Return every level of the tree over ``leaves`` (concatenated hashes), leaves first."""
    levels = [leaves]
    while len(levels[-1]) >= 2 * HASH_SIZE:
        below = levels[-1]
        pair = 2 * HASH_SIZE
        # node_hash inline: one slice of both children, one hash, per node
        levels.append(
            b"".join(
                [
                    sha256(b"\x01" + below[at : at + pair]).digest()
                    for at in range(0, len(below) - pair + 1, pair)
                ]
            )
        )
    return levels


def node_at(levels: list[bytes], level: int, index: int) -> bytes:
    return levels[level][index * HASH_SIZE : (index + 1) * HASH_SIZE]


def root_of(levels: list[bytes], size: int) -> bytes:
    if size == 0:
        return frontier_root([])
    return frontier_root([node_at(levels, lv, i) for lv, i in perfect_cover(0, size)])


_NODES = (
    select(col(AuditNode.node_index), col(AuditNode.hash))
    .where(col(AuditNode.level) == bindparam("level"))
    .order_by(col(AuditNode.node_index))
)


def check_nodes(
    conn: Connection, levels: list[bytes], count: int, batch: int = 20_000
) -> Iterable[Finding]:
    """Yield the first stored node that is missing, extra or changed, and nodes above the tree.

    Each level is streamed in index order; a batch of contiguous nodes that equals the
    rebuilt level is accepted as a whole, any other batch is walked node by node.
    """
    stream = conn.execution_options(stream_results=True, yield_per=batch)
    for level in range(1, len(levels)):
        rebuilt, expected, last = levels[level], count >> level, -1
        result = stream.execute(_NODES, {"level": level})
        try:
            for rows in result.partitions(batch):
                first, end = rows[0][0], rows[-1][0]
                if (
                    first == last + 1
                    and end - first == len(rows) - 1  # indexes are unique and sorted: no gap
                    and end < expected
                    and b"".join([stored for _, stored in rows])
                    == rebuilt[first * HASH_SIZE : (end + 1) * HASH_SIZE]
                ):
                    last = end
                    continue
                finding, last = _walk(rows, level, last, expected, rebuilt, count)
                if finding is not None:
                    yield finding
                    return
        finally:
            result.close()
        if last + 1 < expected:
            yield _subtree(level, last + 1, count, "is missing from the store")
            return
    beyond = conn.execute(
        select(func.min(AuditNode.level)).where(col(AuditNode.level) >= max(len(levels), 1))
    ).scalar_one()
    if beyond is not None:
        yield _beyond(beyond, count)


def _walk(
    rows: Sequence[Any], level: int, last: int, expected: int, rebuilt: bytes, count: int
) -> tuple[Finding | None, int]:
    """Check stored nodes one by one after node ``last``; return the first problem and the
    last good index."""
    for index, stored in rows:
        if index != last + 1 and last + 1 < expected:  # nodes last+1 .. index-1 are missing
            return _subtree(level, last + 1, count, "is missing from the store"), last
        if index >= expected:
            return _beyond(level, count), last
        if stored != rebuilt[index * HASH_SIZE : (index + 1) * HASH_SIZE]:
            return _subtree(level, index, count, "no longer matches them"), last
        last = index
    return None, last


def _beyond(level: int, count: int) -> Finding:
    return Finding(
        f"a stored tree node (level {level}) covers entries beyond the {count} stored ones",
        count,
        count + 1,
    )


def _subtree(level: int, index: int, count: int, what: str) -> Finding:
    start = index << level
    end = min((index + 1) << level, count)
    return Finding(
        f"entries {start}-{end - 1}: one of them was changed after it was logged "
        f"(the stored hash over them, tree level {level}, {what})",
        start,
        end,
    )
