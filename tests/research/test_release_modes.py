"""The agreement's linkage and withdrawal terms, played by an attacker who diffs releases.

- ``linkage: unlinked``: no two released rows share a pseudonym, within or across
  releases, and every row's class holds k rows (counted here with pyarrow).
- A withdrawal between two releases: an attacker who compares the pseudonyms of the
  release before with the release after cannot single out who withdrew; the people
  whose pseudonyms vanished number at least k in every class they came from.
- ``withdrawal: removes: questionnaire-rows``: only the respondent's questionnaire rows
  leave; nobody present in both releases under the same pseudonyms lost rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway import identifiers
from gateway.research.agreements import Agreement, Linkage, Withdrawal, WithdrawalScope
from tests.research.conftest import Opened, Releaser
from tests.research.test_attacks import _people_of

PSEUDONYMS = ["person", "person_nb", "account", "line"]


def _table(opened: Opened) -> pa.Table:
    return pq.read_table(opened.folder / "data.parquet")


def _unlinked(agreement: Agreement) -> Agreement:
    disclosure = agreement.disclosure.model_copy(update={"linkage": Linkage.UNLINKED})
    return agreement.model_copy(update={"disclosure": disclosure})


def test_an_unlinked_release_gives_every_row_fresh_pseudonyms(
    releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    unlinked = _unlinked(agreement)
    first = releaser.open(releaser.release(rows, "unlinked-1", agreement=unlinked))
    second = releaser.open(releaser.release(rows, "unlinked-2", agreement=unlinked))
    seen: list[set[str]] = []
    for opened in (first, second):
        table = _table(opened)
        values = [v for name in PSEUDONYMS for v in table.column(name).to_pylist() if v]
        assert len(values) == len(set(values))  # no pseudonym is shared by two cells
        assert all(len(v) == 32 for v in values)
        seen.append(set(values))
        # the row-wise check, counted here: every row's class over the QIs holds k rows
        qi = list(agreement.disclosure.quasi_identifiers)
        sizes = table.group_by(qi).aggregate([([], "count_all")])
        assert min(sizes.column("count_all").to_pylist()) >= agreement.disclosure.k
        disclosure = opened.release.manifest["disclosure"]
        assert disclosure["unit"] == "row"
        assert disclosure["linkage"] == "unlinked"
        assert disclosure["risk"]["people"] == table.num_rows
    assert not seen[0] & seen[1]  # nothing links the two releases either


def _respondent(rows: list[dict[str, Any]]) -> str:
    """A respondent who has not withdrawn and whose person many providers know."""
    by_person = Counter((r.get("name"), r.get("birth_date")) for r in rows)
    answered = [
        r
        for r in rows
        if r.get("respondent_id") and r.get("consent_withdrawn") not in (True, "true")
    ]
    best = max(answered, key=lambda r: by_person[(r.get("name"), r.get("birth_date"))])
    return str(best["respondent_id"])


def _people(table: pa.Table) -> dict[str, set[str]]:
    """Each released person (union-find of this test) with every pseudonym value they hold."""
    person = _people_of(table).to_pylist()
    held: dict[str, set[str]] = defaultdict(set)
    columns = {n: table.column(n).to_pylist() for n in PSEUDONYMS}
    for i, who in enumerate(person):
        held[who].update(f"{n}:{columns[n][i]}" for n in PSEUDONYMS if columns[n][i])
    return held


def _vanished(before: pa.Table, after: pa.Table) -> set[str]:
    """The attacker's diff: people of ``before`` none of whose pseudonyms are in ``after``."""
    now = set().union(*_people(after).values())
    return {who for who, values in _people(before).items() if not values & now}


def _classes(table: pa.Table, qi: list[str]) -> dict[str, set[tuple[Any, ...]]]:
    """Each released person's quasi-identifier classes."""
    person = _people_of(table).to_pylist()
    keys = [table.column(n).to_pylist() for n in qi]
    found: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for i, who in enumerate(person):
        found[who].add(tuple(k[i] for k in keys))
    return found


@pytest.mark.parametrize("removes", list(WithdrawalScope))
def test_two_releases_around_a_withdrawal_do_not_single_out_who_withdrew(
    releaser: Releaser,
    rows: list[dict[str, Any]],
    agreement: Agreement,
    removes: WithdrawalScope,
) -> None:
    terms = agreement.model_copy(update={"withdrawal": Withdrawal(removes=removes)})
    # nobody has withdrawn before the first release: its pseudonyms are the plain HMACs
    rows = [{**r, "consent_withdrawn": False} if r.get("respondent_id") else r for r in rows]
    respondent = _respondent(rows)
    answer = next(r for r in rows if r.get("respondent_id") == respondent)
    before = releaser.open(releaser.release(rows, "before", agreement=terms))
    after = releaser.open(
        releaser.release(rows, "after", agreement=terms, withdrawn=frozenset({respondent}))
    )
    ps = releaser.ring.pseudonymiser(agreement.project)
    key = f"{identifiers.canonical_name(answer['name'])}|{answer['birth_date']}"
    marker = f"person_nb:{ps('name_birthdate', key)}"
    old, new = _table(before), _table(after)
    who = next(p for p, values in _people(old).items() if marker in values)
    vanished = _vanished(old, new)
    assert who in vanished  # the withdrawn respondent's pseudonyms are gone from the diff
    qi = list(agreement.disclosure.quasi_identifiers)
    k = agreement.disclosure.k
    classes = _classes(old, qi)
    for cls in classes[who]:
        # ... but so are those of at least k people of each of their classes
        assert sum(1 for p in vanished if cls in classes[p]) >= k
    # nobody still present under the same pseudonyms lost rows: the difference of the
    # releases points at no single person
    rows_before, rows_after = _rows_per_person(old), _rows_per_person(new)
    for values, count in rows_after.items():
        if values in rows_before:
            assert count == rows_before[values]
    counts = [o.release.manifest["disclosure"] for o in (before, after)]
    assert (counts[0]["withdrawals_applied"], counts[1]["withdrawals_applied"]) == (0, 1)
    assert counts[1]["withdrawal_removes"] == removes.value
    # only the withdrawn and 2k more people of each of their classes are re-drawn
    assert k <= counts[1]["people_redrawn"] <= 1 + 2 * k * len(classes[who])
    # and the re-drawn pseudonyms stay the same in the next release
    again = releaser.open(
        releaser.release(rows, "again", agreement=terms, withdrawn=frozenset({respondent}))
    )
    assert set().union(*_people(_table(again)).values()) == set().union(*_people(new).values())
    excluded = [o.release.manifest["counts"]["excluded"] for o in (before, after)]
    left = excluded[1]["respondent-withdrawn"] - excluded[0].get("respondent-withdrawn", 0)
    answers = sum(1 for r in rows if r.get("respondent_id") == respondent)
    if removes is WithdrawalScope.QUESTIONNAIRE_ROWS:
        assert left == answers  # only the questionnaire rows left
    else:
        assert left > answers  # the person's other rows left too


def _rows_per_person(table: pa.Table) -> dict[frozenset[str], int]:
    person = _people_of(table).to_pylist()
    held = _people(table)
    counts = Counter(person)
    return {frozenset(held[who]): n for who, n in counts.items()}
