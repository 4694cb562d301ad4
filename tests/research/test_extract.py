"""Extracts of the example agreement on synthetic data, decrypted and inspected.

Nothing identifying leaves; pseudonyms link within a project and not across; every
class holds at least k people; consents and withdrawals take effect in the next
release; releases outside the period or with too much suppression are refused.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway import identifiers
from gateway.errors import InvalidInputError
from gateway.research.agreements import Agreement
from gateway.research.bundle import sha256_file
from gateway.research.errors import (
    AgreementNotInEffectError,
    DisclosureCheckFailedError,
    GeneralisationStateError,
)
from gateway.research.extract import ExtractRequest
from gateway.research.generalise import GeneralisationState
from gateway.research.release_builder import make_release
from tests.research.conftest import Opened, Releaser, csv_rows


def _parquet_rows(opened: Opened) -> list[dict[str, Any]]:
    return list(pq.read_table(opened.folder / "data.parquet").to_pylist())


def _cells(opened: Opened) -> list[str]:
    cells = [v for row in csv_rows(opened) for v in row.values() if v]
    cells += [v for row in _parquet_rows(opened) for v in row.values() if v is not None]
    return cells


def _sensitive(rows: list[dict[str, Any]]) -> set[str]:
    """Every identifying value of the input, raw and normalised."""
    found: set[str] = set()
    for row in rows:
        for field, kind in (("bsn", "bsn"), ("iban", "iban"), ("phone", "phone")):
            if row.get(field):
                found.add(row[field])
                with contextlib.suppress(InvalidInputError):
                    found.add(identifiers.normalise(kind, row[field]))
        found.update({row["name"], row["birth_date"], row.get("respondent_id") or row["name"]})
        if row.get("postcode"):
            found.add(row["postcode"])
    return found


@pytest.fixture
def first(releaser: Releaser, rows: list[dict[str, Any]]) -> Opened:
    """The first release of the example agreement, decrypted."""
    return releaser.open(releaser.release(rows, "release-1"))


def test_no_identifying_value_of_the_input_reaches_any_extract_file(
    first: Opened, rows: list[dict[str, Any]]
) -> None:
    cells = _cells(first)
    assert len(cells) > 10_000
    assert not set(cells) & _sensitive(rows)
    text = "\n".join(cells) + "\n" + first.csv_text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)  # no full date at all
    assert not re.search(r"(?<![0-9A-Za-z])\d{8,9}(?![0-9A-Za-z])", text)  # no BSN-like token
    assert not re.search(r"NL\d{2}\s?[A-Z]{4}", text, re.IGNORECASE)  # no IBAN
    phone = r"(?<![0-9A-Za-z])(?:\+31\s?|0031|0)6[-\s]?\d{4}\s?\d{4}(?![0-9A-Za-z])"
    assert not re.search(phone, text)  # no phone number
    assert not re.search(r"\b\d{4}\s?[A-Za-z]{2}\b", text)  # no full postcode
    words = set(re.findall(r"[^\W\d_]+", text.lower()))
    particles = {"de", "van", "der", "t", "el"}
    name_words = {w for row in rows for w in re.findall(r"[^\W\d_]+", row["name"].lower())}
    assert not (name_words - particles) & words  # no first or last name, even alone
    for free_text in ("Melding", "vriend", "Rekeninghouder", "Parketnummer"):
        assert free_text not in text


def test_only_the_agreed_columns_appear(first: Opened, agreement: Agreement) -> None:
    header = first.csv_text.splitlines()[0].replace('"', "").split(",")
    released = [c.name for c in agreement.released_columns]
    assert header == released
    assert pq.read_table(first.folder / "data.parquet").column_names == released
    assert not {"name", "respondent_id", "notes", "bsn", "iban", "phone"} & set(header)


def test_same_person_same_pseudonym_across_providers(
    first: Opened, rows: list[dict[str, Any]], releaser: Releaser, agreement: Agreement
) -> None:
    pseudonymise = releaser.ring.pseudonymiser(agreement.project)
    providers_by_bsn: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.get("bsn") and row["provider"] in {"politie-noord-nederland", "voorbeeldbank"}:
            with contextlib.suppress(InvalidInputError):
                providers_by_bsn[identifiers.bsn(row["bsn"])].add(row["provider"])
    both = [b for b, found in providers_by_bsn.items() if len(found) == 2]
    assert len(both) > 20
    released: dict[str, set[str]] = defaultdict(set)
    by_nb: dict[str, set[str]] = defaultdict(set)
    for row in csv_rows(first):
        if row["person"]:
            released[row["person"]].add(row["provider"])
        by_nb[row["person_nb"]].add(row["provider"])
    pair = {"politie-noord-nederland", "voorbeeldbank"}
    # people who share a class with a withdrawn respondent are re-drawn (a keyed pseudonym
    # of their own, still one per person); everybody else keeps the BSN's pseudonym
    direct = [b for b in both if pseudonymise("bsn", b) in released]
    assert direct and all(pair <= released[pseudonymise("bsn", b)] for b in direct)
    linked = [p for p, found in released.items() if pair <= found]
    assert len(linked) > 0.8 * len(both)  # the rest fell into suppressed small classes
    # the telecom provider has no BSN: it links through name and birth date
    assert any({"voorbeeldtelecom", "politie-noord-nederland"} <= p for p in by_nb.values())


def test_two_releases_of_one_project_hold_the_same_rows_in_another_order_and_link(
    first: Opened, releaser: Releaser, rows: list[dict[str, Any]]
) -> None:
    state = first.release.state
    second = releaser.open(releaser.release(rows, "release-2", state=state))
    first_lines, second_lines = first.csv_text.splitlines(), second.csv_text.splitlines()
    assert first_lines[0] == second_lines[0]
    assert sorted(first_lines[1:]) == sorted(second_lines[1:])
    assert first_lines[1:] != second_lines[1:]  # each release draws its own order
    assert second.release.state == state
    gen = second.release.manifest["generalisation"]
    assert gen["state_sha256"] == first.release.manifest["generalisation"]["state_sha256"]


def test_other_project_gets_other_pseudonyms(
    first: Opened, releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    other = agreement.model_copy(update={"id": "ander-onderzoek", "project": "ander-onderzoek"})
    elsewhere = releaser.open(releaser.release(rows, "other-1", agreement=other))
    for column in ("person", "person_nb", "account", "line"):
        ours = {r[column] for r in csv_rows(first) if r[column]}
        theirs = {r[column] for r in csv_rows(elsewhere) if r[column]}
        assert ours and theirs and not ours & theirs, column


def test_every_class_holds_at_least_k_people(first: Opened, agreement: Agreement) -> None:
    # the classes are over every checked attribute: the quasi-identifiers and, as the
    # example enforces the one-event attacker, what is known of an event
    checked = agreement.disclosure.checked_attributes
    assert checked == ("born", "area", "provider", "category", "week")
    people: dict[tuple[str, ...], set[str]] = defaultdict(set)
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for row in csv_rows(first):
        key = tuple(row[name] for name in checked)
        people[key].add(row["person_nb"])
        counts[key] += 1
    k = agreement.disclosure.k
    assert people and all(len(p) >= k for p in people.values())
    assert all(c >= k for c in counts.values())
    disclosure = first.release.manifest["disclosure"]
    assert disclosure["smallest_released_class"] >= k
    assert disclosure["classes"] - disclosure["classes_suppressed"] == len(people)


def test_manifest_counts_and_checksums_match_the_files(
    first: Opened, agreement: Agreement, rows: list[dict[str, Any]]
) -> None:
    manifest = first.release.manifest
    counts = manifest["counts"]
    assert counts["rows_in"] == len(rows)
    assert counts["rows_selected"] + sum(counts["excluded"].values()) == len(rows)
    assert counts["rows_out"] == counts["rows_selected"] - counts["rows_suppressed"]
    assert len(csv_rows(first)) == len(_parquet_rows(first)) == counts["rows_out"]
    assert counts["excluded"]["provider-not-in-agreement"] == sum(
        1 for r in rows if r["provider"] == "belastingdienst"
    )
    assert counts["invalid_values"]["person"] > 0  # the mistyped BSNs
    for entry in manifest["files"]:
        assert sha256_file(first.folder / entry["name"]) == (entry["sha256"], entry["bytes"])
    assert manifest["agreement"]["sha256"] == agreement.sha256
    assert manifest["release"]["expires_on"] == "2027-11-23"
    assert manifest["release"]["policy_version"] == "policy-test-1"
    assert manifest["providers"]["consenting"] == sorted(agreement.provider_ids)
    assert {c["duo"] for c in manifest["conditions"]} == {c.term for c in agreement.conditions}
    assert manifest["pseudonymisation"]["key_id"].startswith("test-")
    transforms = {c["name"]: c["transform"] for c in manifest["columns"]}
    assert transforms["person"] == "pseudonymise:bsn" and transforms["name"] == "drop"
    assert [r["recipient"] for r in manifest["researchers"]] == list(agreement.recipients)


def test_revoked_provider_consent_and_withdrawn_respondent_leave_the_next_release(
    first: Opened, releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    released_answers = {r["person_nb"] for r in csv_rows(first) if r["category"] == "questionnaire"}
    pseudonymise = releaser.ring.pseudonymiser(agreement.project)
    respondent, person_nb = next(
        (r["respondent_id"], nb)
        for r in rows
        if r["category"] == "questionnaire"
        and (
            nb := pseudonymise(
                "name_birthdate", identifiers.name_birthdate(r["name"], r["birth_date"])
            )
        )
        in released_answers
    )
    assert "voorbeeldbank" in {r["provider"] for r in csv_rows(first)}
    consenting = agreement.provider_ids - {"voorbeeldbank"}
    later = releaser.open(
        releaser.release(
            rows,
            "release-2",
            consenting=consenting,
            withdrawn=frozenset({respondent}),
            state=first.release.state,
        )
    )
    later_rows = csv_rows(later)
    assert "voorbeeldbank" not in {r["provider"] for r in later_rows}
    assert not any(
        r["person_nb"] == person_nb and r["category"] == "questionnaire" for r in later_rows
    )
    manifest = later.release.manifest
    assert "voorbeeldbank" not in manifest["providers"]["consenting"]
    assert manifest["counts"]["excluded"]["no-provider-consent"] == sum(
        1 for r in rows if r["provider"] == "voorbeeldbank"
    )
    assert manifest["counts"]["excluded"]["respondent-withdrawn"] == _rows_of_withdrawn_people(
        rows, frozenset({respondent}), consenting
    )
    # the withdrawn person is gone from every provider's rows, not only from the answers
    assert not any(r["person_nb"] == person_nb for r in later_rows)


def test_questionnaire_consent_rules(first: Opened, rows: list[dict[str, Any]]) -> None:
    excluded = first.release.manifest["counts"]["excluded"]
    assert excluded["no-parental-consent"] == sum(
        1
        for r in rows
        if r["category"] == "questionnaire"
        and r["parental_consent"] is False
        and not r["consent_withdrawn"]
    )
    # a withdrawal removes the person: their answers and every other provider's rows
    assert excluded["respondent-withdrawn"] == _rows_of_withdrawn_people(rows)
    assert first.release.manifest["disclosure"]["withdrawals_applied"] == sum(
        1 for r in rows if r["category"] == "questionnaire" and r["consent_withdrawn"]
    )


def _person(row: dict[str, Any]) -> tuple[str, str]:
    """The synthetic ground truth of who a row is about."""
    return row["name"].casefold(), row["birth_date"]


def _rows_of_withdrawn_people(
    rows: list[dict[str, Any]],
    also: frozenset[str] = frozenset(),
    providers: frozenset[str] | None = None,
) -> int:
    gone = {
        _person(r)
        for r in rows
        if r["category"] == "questionnaire"
        and (r["consent_withdrawn"] or r["respondent_id"] in also)
    }
    return sum(
        1
        for r in rows
        if _person(r) in gone
        and r["provider"] != "belastingdienst"
        and (providers is None or r["provider"] in providers)
    )


def test_wrong_consent_text_version_is_no_consent(
    releaser: Releaser, rows: list[dict[str, Any]]
) -> None:
    changed = [
        {**r, "consent_version": "oude-tekst-v0"} if r["category"] == "questionnaire" else r
        for r in rows
    ]
    release = releaser.release(changed, "old-consent")
    excluded = release.manifest["counts"]["excluded"]
    assert excluded["no-respondent-consent"] > 0
    assert "questionnaire" not in {r for r in release.manifest["counts"]}


def _no_release_left(folder: Path) -> bool:
    return not folder.exists() or not [
        p for p in folder.iterdir() if p.suffix == ".tar" or p.name.startswith(".extract-tmp-")
    ]


def test_release_outside_the_period_is_refused(
    releaser: Releaser, rows: list[dict[str, Any]]
) -> None:
    for at in (datetime(2025, 12, 31, 12, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)):
        with pytest.raises(AgreementNotInEffectError, match="nothing is released"):
            releaser.release(rows, "too-late", at=at)
    assert _no_release_left(releaser.out)


def test_too_much_suppression_is_refused_with_numbers(
    releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    strict = agreement.model_copy(
        update={"disclosure": agreement.disclosure.model_copy(update={"k": 400})}
    )
    with pytest.raises(DisclosureCheckFailedError, match=r"would suppress \d+ of \d+ rows") as info:
        releaser.release(rows, "strict", agreement=strict)
    assert info.value.extensions["total_rows"] > 0
    assert _no_release_left(releaser.out)


def test_a_fixed_generalisation_is_kept_or_the_release_refused(
    first: Opened, releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    finest = GeneralisationState(
        agreement.id,
        agreement.project,
        {
            "born": "year",
            "area": "pc4",
            "provider": "as-kept",
            "category": "as-kept",
            "week": "week",
        },
        first.release.state.reference_date,
    )
    with pytest.raises(DisclosureCheckFailedError, match="project's fixed generalisation"):
        releaser.release(rows, "finer", state=finest)
    wrong = GeneralisationState(agreement.id, agreement.project, {"born": "year"})
    with pytest.raises(
        GeneralisationStateError, match="quasi-identifiers are born, area, provider, category, week"
    ):
        releaser.release(rows, "wrong", state=wrong)
    foreign = GeneralisationState("ander", "ander", dict(first.release.state.levels))
    with pytest.raises(GeneralisationStateError, match="belongs to ander/ander"):
        releaser.release(rows, "foreign", state=foreign)


def test_arrow_batches_give_the_same_extract_as_rows(
    first: Opened, releaser: Releaser, rows: list[dict[str, Any]], agreement: Agreement
) -> None:
    fields = sorted({key for row in rows for key in row})
    table = pa.table({key: [row.get(key) for row in rows] for key in fields})
    request = ExtractRequest(
        agreement,
        "as-batches",
        datetime(2026, 11, 23, 9, tzinfo=UTC),
        "policy-test-1",
        agreement.provider_ids,
        state=first.release.state,
    )
    release = make_release(
        request,
        batches=table.to_batches(max_chunksize=1000),
        pseudonymiser=releaser.ring.pseudonymiser(agreement.project),
        signer=releaser.signer,
        out_dir=releaser.out,
    )
    assert sorted(releaser.open(release).csv_text.splitlines()) == sorted(
        first.csv_text.splitlines()
    )


def test_rows_without_provider_are_an_input_error(releaser: Releaser) -> None:
    with pytest.raises(InvalidInputError, match="need a provider and a category"):
        releaser.release([{"bsn": "111222333", "category": "police-incident"}], "no-provider")
    assert _no_release_left(releaser.out)


def test_without_any_consent_the_release_is_empty_but_complete(
    releaser: Releaser, rows: list[dict[str, Any]]
) -> None:
    opened = releaser.open(releaser.release(rows, "nobody-consented", consenting=frozenset()))
    counts = opened.release.manifest["counts"]
    assert counts["rows_out"] == 0 and counts["rows_selected"] == 0
    assert opened.release.manifest["providers"]["consenting"] == []
    assert csv_rows(opened) == [] and _parquet_rows(opened) == []
    assert opened.csv_text.startswith('"person","person_nb"')


def test_release_time_must_be_aware(releaser: Releaser, rows: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        releaser.release(rows, "naive", at=datetime(2026, 11, 23, 9))
