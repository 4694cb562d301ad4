"""Research agreements: the example loads; every mistake names its file and line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.research.agreements import (
    AgreementVocabulary,
    Linkage,
    Prohibition,
    WithdrawalScope,
    load_agreement,
    load_agreements,
)
from gateway.research.errors import AgreementNotInEffectError
from gateway.research.transforms import Generalisable, Transform, TransformKind
from gateway.yamlsource import SourceError
from tests.conftest import POLICIES
from tests.research.conftest import EXAMPLE

TEXT = EXAMPLE.read_text(encoding="utf-8")


def test_example_agreement_loads(vocabulary: AgreementVocabulary) -> None:
    agreement = load_agreement(EXAMPLE, vocabulary)
    assert agreement.id == agreement.project == "jeugdnetwerken-noord-nederland"
    assert {p.partner for p in agreement.science_partners} == {"nscr", "haagse-hogeschool"}
    assert agreement.provider_ids >= {
        "gemeente-leeuwarden",
        "gemeente-groningen",
        "gemeente-smallingerland",
        "politie-noord-nederland",
        "om-noord-nederland",
        "voorbeeldbank",
        "voorbeeldtelecom",
    }
    assert all(r.recipient.startswith("age1") for r in agreement.researchers)
    assert set(agreement.prohibitions) == set(Prohibition)
    assert {c.term for c in agreement.conditions} >= {
        "DUO:0000027",  # project specific restriction
        "DUO:0000025",  # time limit on use
        "DUO:0000024",  # publication moratorium
        "DUO:0000021",  # ethics approval required
        "DUO:0000029",  # return to database or resource
    }
    assert agreement.column("born").transform.levels == ("year", "age_band")
    assert agreement.disclosure.k == 5
    assert len(agreement.sha256) == 64


def test_every_shipped_agreement_loads(vocabulary: AgreementVocabulary) -> None:
    assert "jeugdnetwerken-noord-nederland" in load_agreements(POLICIES / "agreements", vocabulary)


def test_vocabulary_comes_from_the_policy_pack(vocabulary: AgreementVocabulary) -> None:
    assert "science" in vocabulary.partner_kinds
    assert "wetenschappelijk-onderzoek" in vocabulary.purposes
    assert "offence" in vocabulary.category_fields["research-incident"]


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the agreement")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agreement.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# (case, text to replace, replacement, line that must be named (a needle), message part)
MUST_FAIL = [
    (
        "unknown partner kind",
        "{partner: voorbeeldbank, kind: bank,",
        "{partner: voorbeeldbank, kind: bakery,",
        "kind: bakery",
        "unknown partner kind 'bakery'",
    ),
    (
        "unknown transformation",
        'transform: "generalise:timestamp:week|month|quarter|year"',
        'transform: "blur:timestamp"',
        "blur:timestamp",
        "unknown transformation 'blur:timestamp'",
    ),
    (
        "unknown generalisation level",
        '"generalise:postcode:pc4|municipality|province"',
        '"generalise:postcode:pc3|municipality|province"',
        "pc3|municipality",
        "levels of generalise:postcode are pc4, municipality, province",
    ),
    ("k below 2", "  k: 5", "  k: 1", "  k: 1", "k must be at least 2"),
    (
        "too many known events",
        "  known_events: 1\n",
        "  known_events: 9\n",
        "known_events: 9",
        "less than or equal to 4",
    ),
    (
        "unknown linkage",
        "  event_check: enforce\n",
        "  event_check: enforce\n  linkage: sometimes\n",
        "linkage: sometimes",
        "'linked' or 'unlinked'",
    ),
    (
        "end before start",
        "  end: 2027-12-31",
        "  end: 2025-12-31",
        "  end: 2025-12-31",
        "end 2025-12-31 is before start 2026-01-01",
    ),
    (
        "researcher without recipient",
        "    recipient: age1v33qn0533r6nnpjunqtgesx3mpfs7vhgdefyw7sed5uq4tje6vlqher8x5\n",
        "",
        'name: "Onderzoeker A (NSCR)"',
        "researchers[0].recipient: required but missing",
    ),
    (
        "researcher with a malformed recipient",
        "recipient: age1v33qn0533r6nnpjunqtgesx3mpfs7vhgdefyw7sed5uq4tje6vlqher8x5",
        "recipient: age1notakey",
        "age1notakey",
        "not an age X25519 recipient",
    ),
    (
        "quasi-identifier not generalised",
        "quasi_identifiers: [born, area]",
        "quasi_identifiers: [born, offence]",
        "quasi_identifiers: [born, offence]",
        "quasi-identifier 'offence' is not generalised (its transformation is keep)",
    ),
    (
        "direct identifier kept",
        "{name: name, source: name, transform: drop}",
        "{name: name, source: name, transform: keep}",
        "{name: name, source: name, transform: keep}",
        "keeps the direct identifier 'name'",
    ),
    (
        "free text kept",
        "{name: report, source: report, transform: keep,",
        "{name: report, source: q_toelichting, transform: keep,",
        "source: q_toelichting",
        "no instrument delivers field 'q_toelichting'",
    ),
    (
        "kept column without a code list",
        "{name: role, source: role, transform: keep, values: [verdachte, slachtoffer, getuige]}",
        "{name: role, source: role, transform: keep}",
        "{name: role, source: role, transform: keep}",
        "column 'role' keeps 'role' without a code list",
    ),
    (
        "code list on a pseudonymised column",
        '{name: line, source: phone, transform: "pseudonymise:phone"}',
        '{name: line, source: phone, transform: "pseudonymise:phone", values: [a]}',
        "source: phone, transform",
        "column 'line': only kept columns take values or a range",
    ),
    (
        "sensitive attribute not a kept column",
        "sensitive: [offence, outcome, role]",
        "sensitive: [offence, week]",
        "sensitive: [offence, week]",
        "sensitive: 'week' must be a kept (coded) column",
    ),
    (
        "full timestamp kept",
        'transform: "generalise:timestamp:week|month|quarter|year"',
        "transform: keep",
        "{name: week, source: occurred_at, transform: keep}",
        "keeps 'occurred_at' in full; generalise it",
    ),
    (
        "unknown DUO term",
        "- term: DUO:0000046",
        "- term: DUO:0009999",
        "DUO:0009999",
        "'DUO:0009999' is not a DUO term",
    ),
    (
        "science partner of another kind",
        "  - partner: haagse-hogeschool\n    kind: science",
        "  - partner: haagse-hogeschool\n    kind: gemeente",
        "kind: gemeente",
        "must be of kind science",
    ),
    (
        "researcher of a partner outside the agreement",
        "    partner: haagse-hogeschool\n    recipient",
        "    partner: hanzehogeschool\n    recipient",
        "partner: hanzehogeschool",
        "not a science partner of this agreement",
    ),
    (
        "instrument of a provider outside the agreement",
        "providers: [voorbeeldtelecom]",
        "providers: [andertelecom]",
        "providers: [andertelecom]",
        "'andertelecom' is not a provider of this agreement",
    ),
    (
        "missing prohibition",
        "  - no-contact-with-subjects\n",
        "",
        "prohibitions:",
        "prohibitions must include no-contact-with-subjects",
    ),
    (
        "several levels on a column that is no quasi-identifier",
        "  event_check: enforce\n",
        "  event_check: report\n  linkage: unlinked\n",
        "week|month|quarter|year",
        "only quasi-identifiers may list several levels",
    ),
    (
        "linked histories only measured against the one-event attacker",
        "  event_check: enforce\n",
        "  event_check: report\n",
        "event_check: report",
        "event_check: report would release linked histories that an attacker who knows "
        "1 event(s) of a person can single out",
    ),
    (
        "when an event happened left out of what an attacker may know",
        "event_quasi_identifiers: [provider, category, week]",
        "event_quasi_identifiers: [provider, category]",
        "event_quasi_identifiers: [provider, category]",
        "column 'week' tells when or from whom an event came: a linked release must list it",
    ),
    (
        "who sent an event left out of what an attacker may know",
        "event_quasi_identifiers: [provider, category, week]",
        "event_quasi_identifiers: [category, week]",
        "event_quasi_identifiers: [category, week]",
        "column 'provider' tells when or from whom an event came: a linked release must list",
    ),
    (
        "count_distinct that is not a pseudonym",
        "count_distinct: person_nb",
        "count_distinct: provider",
        "count_distinct: provider",
        "must be a pseudonymised column",
    ),
    (
        "unknown key",
        "retention:\n",
        "retention:\n  forever: true\n",
        "forever: true",
        "retention.forever: unknown key",
    ),
    (
        "questionnaire without consent text",
        "    consent_text_version: jnn-toestemming-2026-v1\n",
        "",
        "id: vragenlijst-jongeren",
        "a questionnaire needs consent_text_version",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [case[1:] for case in MUST_FAIL],
    ids=[case[0] for case in MUST_FAIL],
)
def test_mistakes_name_file_and_line(
    tmp_path: Path, vocabulary: AgreementVocabulary, old: str, new: str, needle: str, message: str
) -> None:
    assert TEXT.count(old) >= 1
    text = TEXT.replace(old, new, 1)
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as info:
        load_agreement(path, vocabulary)
    expected = f"{path}:{_line_of(text, needle)}: "
    matching = [str(p) for p in info.value.problems if message in p.message]
    assert matching, str(info.value)
    assert matching[0].startswith(expected), (matching, expected)


def test_all_mistakes_are_reported_at_once(tmp_path: Path, vocabulary: AgreementVocabulary) -> None:
    text = TEXT.replace("kind: bank,", "kind: bakery,").replace("  k: 5", "  k: 1")
    text = text.replace("- term: DUO:0000046", "- term: DUO:0009999")
    with pytest.raises(SourceError) as info:
        load_agreement(_write(tmp_path, text), vocabulary)
    # shape errors (k, DUO) come first; cross-references are checked once the shape is right
    assert len(info.value.problems) == 2
    fixed = text.replace("  k: 1", "  k: 5").replace("DUO:0009999", "DUO:0000046")
    fixed = fixed.replace("providers: [voorbeeldtelecom]", "providers: [andertelecom]")
    with pytest.raises(SourceError) as info:
        load_agreement(_write(tmp_path, fixed), vocabulary)
    assert len(info.value.problems) == 2  # the bakery and the unknown telecom provider


def test_reserved_keys_are_refused(tmp_path: Path, vocabulary: AgreementVocabulary) -> None:
    path = _write(tmp_path, TEXT + "sha256: abc\n")
    with pytest.raises(SourceError, match=r"sha256: set by the gateway"):
        load_agreement(path, vocabulary)


def test_names_are_checked_against_the_policy_vocabulary(
    tmp_path: Path, vocabulary: AgreementVocabulary
) -> None:
    text = (
        TEXT.replace("purpose: wetenschappelijk-onderzoek", "purpose: wetenschap")
        .replace("  - questionnaire\n", "  - vragenlijst\n")
        .replace("legal_basis: wpg-22-bpg-4-7", "legal_basis: wpg-22")
        .replace("occurred_at, offence, role]", "occurred_at, offence, rol]")
    )
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as info:
        load_agreement(path, vocabulary)
    problems = str(info.value)
    assert f"{path}:{_line_of(text, 'purpose: wetenschap')}: unknown purpose" in problems
    assert f"{path}:{_line_of(text, '  - vragenlijst')}: unknown data category" in problems
    assert f"{path}:{_line_of(text, 'legal_basis: wpg-22')}: unknown legal basis" in problems
    assert "category 'research-incident' has no field 'rol'" in problems


def test_period_decides_whether_anything_is_released(vocabulary: AgreementVocabulary) -> None:
    agreement = load_agreement(EXAMPLE, vocabulary)
    agreement.require_in_effect(datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    agreement.require_in_effect(datetime(2027, 12, 31, 23, 59, tzinfo=UTC))
    for outside in (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)):
        with pytest.raises(AgreementNotInEffectError, match="nothing is released"):
            agreement.require_in_effect(outside)
    assert agreement.expiry(datetime(2026, 11, 23, 9, tzinfo=UTC)) == date(2027, 11, 23)


def test_recipients_can_be_replaced_in_memory_only(vocabulary: AgreementVocabulary) -> None:
    agreement = load_agreement(EXAMPLE, vocabulary)
    with pytest.raises(ValueError, match="give 3 recipients"):
        agreement.with_recipients(["age1xyz"])
    with pytest.raises(ValueError, match="not an age X25519 recipient"):
        agreement.with_recipients(["age1xyz"] * 3)


TRANSFORMS = [
    ("keep", Transform(TransformKind.KEEP)),
    ("drop", Transform(TransformKind.DROP)),
    ("pseudonymise:bsn", Transform(TransformKind.PSEUDONYMISE, id_type="bsn")),  # type: ignore[arg-type]  # StrEnum compares equal
    (
        "generalise:birth_date:year|age_band",
        Transform(
            TransformKind.GENERALISE, what=Generalisable.BIRTH_DATE, levels=("year", "age_band")
        ),
    ),
    (
        "generalise:postcode:municipality",
        Transform(TransformKind.GENERALISE, what=Generalisable.POSTCODE, levels=("municipality",)),
    ),
    (
        "generalise:timestamp:week",
        Transform(TransformKind.GENERALISE, what=Generalisable.TIMESTAMP, levels=("week",)),
    ),
]


@pytest.mark.parametrize(("text", "expected"), TRANSFORMS)
def test_transformations_parse_and_print_back(text: str, expected: Transform) -> None:
    assert Transform.parse(text) == expected
    assert str(Transform.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a transformation is text"),
        ("keep:all", "keep takes no argument"),
        ("pseudonymise:passport", "unknown identifier type"),
        ("pseudonymise", "unknown identifier type"),
        ("generalise:income:band", "cannot generalise 'income'"),
        ("generalise:postcode", "levels of generalise:postcode"),
        ("generalise:postcode:municipality|pc4", "finest first"),
        ("generalise:postcode:pc4|pc4", "once each"),
        ("hash:bsn", "unknown transformation"),
    ],
)
def test_bad_transformations_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Transform.parse(text)


def test_free_text_is_never_kept_even_when_delivered(
    tmp_path: Path, vocabulary: AgreementVocabulary
) -> None:
    text = TEXT.replace(
        "fields: [bsn, name, birth_date, postcode, occurred_at, offence, role]",
        "fields: [bsn, name, birth_date, postcode, occurred_at, offence, role, notes]",
    ).replace(
        "{name: role, source: role, transform: keep,",
        "{name: role, source: notes, transform: keep,",
    )
    path = _write(tmp_path, text)
    with pytest.raises(SourceError) as info:
        load_agreement(path, vocabulary)
    line = _line_of(text, "source: notes")
    assert f"{path}:{line}: column 'role': free text ('notes') is never released" in str(info.value)


def test_linkage_m_events_and_withdrawal_terms_load(
    tmp_path: Path, vocabulary: AgreementVocabulary
) -> None:
    text = TEXT.replace("  known_events: 1\n", "  known_events: 3\n").replace(
        "  event_check: enforce\n",
        "  event_check: enforce\n  linkage: unlinked\n",
    )
    text += "\nwithdrawal:\n  removes: questionnaire-rows\n"
    loaded = load_agreement(_write(tmp_path, text), vocabulary)
    assert loaded.disclosure.known_events == 3
    assert loaded.disclosure.linkage is Linkage.UNLINKED
    assert loaded.withdrawal.removes is WithdrawalScope.QUESTIONNAIRE_ROWS
    default = load_agreement(EXAMPLE, vocabulary)
    assert default.disclosure.linkage is Linkage.LINKED
    assert default.withdrawal.removes is WithdrawalScope.PERSON
