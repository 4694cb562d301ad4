"""The rebuilt Merkle tree of a verification, and the checks of the stored nodes against it.

``build_levels`` rebuilds every level from the leaf hashes (RFC 9162 node hashes);
``check_nodes`` walks the stored ``audit_nodes`` level by level against them and yields
the first subtree whose stored hash is missing, extra or changed, as a ``Finding`` over
the entries it covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.audit.merkle import HASH_SIZE, frontier_root, node_hash, perfect_cover
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
    levels = [leaves]
    while len(levels[-1]) >= 2 * HASH_SIZE:
        below = levels[-1]
        pairs = len(below) // (2 * HASH_SIZE)
        level = bytearray()
        for i in range(pairs):
            at = 2 * HASH_SIZE * i
            level += node_hash(
                below[at : at + HASH_SIZE], below[at + HASH_SIZE : at + 2 * HASH_SIZE]
            )
        levels.append(bytes(level))
    return levels


def node_at(levels: list[bytes], level: int, index: int) -> bytes:
    return levels[level][index * HASH_SIZE : (index + 1) * HASH_SIZE]


def root_of(levels: list[bytes], size: int) -> bytes:
    if size == 0:
        return frontier_root([])
    return frontier_root([node_at(levels, lv, i) for lv, i in perfect_cover(0, size)])


def check_nodes(session: Session, levels: list[bytes], count: int) -> Iterable[Finding]:
    for level in range(1, len(levels)):
        expected = count >> level
        last = -1
        while True:
            rows = session.exec(
                select(AuditNode.node_index, AuditNode.hash)
                .where(col(AuditNode.level) == level, col(AuditNode.node_index) > last)
                .order_by(col(AuditNode.node_index))
                .limit(20_000)
            ).all()
            if not rows:
                break
            for index, stored in rows:
                if index != last + 1:  # nodes last+1 .. index-1 are missing
                    missing = last + 1
                    if missing < expected:
                        yield _subtree(level, missing, count, "is missing from the store")
                        return
                if index >= expected:
                    yield _beyond(level, count)
                    return
                if stored != node_at(levels, level, index):
                    yield _subtree(level, index, count, "no longer matches them")
                    return
                last = index
        if last + 1 < expected:
            yield _subtree(level, last + 1, count, "is missing from the store")
            return
    beyond = session.exec(
        select(func.min(AuditNode.level)).where(col(AuditNode.level) >= max(len(levels), 1))
    ).one()
    if beyond is not None:
        yield _beyond(beyond, count)


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
