"""Packs, diffs and replays as pure functions (no database): tables of changes and flips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.errors import InvalidInputError
from gateway.policy.decision import Action, DecisionRequest, Relation
from gateway.policy.diff import Change, diff_packs
from gateway.policy.pack import Pack, analyse_pack, check_pack, engine_for, read_pack
from gateway.policy.recording import RecordedDecision
from gateway.policy.simulate import FlipKind, replay
from gateway.yamlsource import SourceError
from tests.conftest import POLICIES
from tests.workbench.helpers import BESTUURLIJK_CATEGORIES, RULES_30, shipped, widened_rules

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NEW_RULE = """
  - id: gemeente-leest-adviezen-extra
    effect: allow
    when:
      action: case:output:read
      partner_kind: gemeente
      role: analyst
      process: casusaanpak
      step: "4"
      category: advice
    reason: Test rule.
    source: Test.
"""


@pytest.fixture(scope="module")
def shipped_pack() -> Pack:
    return read_pack(POLICIES)


def recorded(request: DecisionRequest, number: int = 1) -> RecordedDecision:
    decision = engine_for(read_pack(POLICIES)).decide(request)
    return RecordedDecision(number, AT, None, request, decision)


def gemeente_reads(
    category: str, step: int = 5, purpose: str = "interventie-bestuurlijk"
) -> DecisionRequest:
    return DecisionRequest(
        partner_id="gemeente-smallingerland",
        partner_kind="gemeente",
        role="analyst",
        action=Action.RECORD_READ,
        process="casusaanpak",
        step=step,
        purpose=purpose,
        category=category,
        provider_kind="politie",
        relation=Relation.OTHER,
    )


def test_a_pack_holds_every_file_and_only_editable_ones_change(shipped_pack: Pack) -> None:
    assert {"model.conf", "vocabulary.yaml", "README.md", RULES_30} <= set(shipped_pack.files)
    assert "vocabulary.yaml" not in shipped_pack.editable and RULES_30 in shipped_pack.editable
    for path in ("vocabulary.yaml", "model.conf", "rules/../x.yaml", "rules/X.yaml", "/etc/passwd"):
        with pytest.raises(InvalidInputError):
            shipped_pack.with_changes({path: "x"})
    with pytest.raises(InvalidInputError, match="does not exist"):
        shipped_pack.with_changes({"rules/99-none.yaml": None})
    crlf = shipped_pack.with_changes({RULES_30: shipped(RULES_30).replace("\n", "\r\n")})
    assert crlf.sha256 == shipped_pack.sha256  # browsers send CRLF; the content is the same


def test_read_pack_refuses_binary_files(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "x.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_pack(tmp_path)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace(
                BESTUURLIJK_CATEGORIES,
                BESTUURLIJK_CATEGORIES.replace("om-case", "om-case, labour-inspection"),
            ),
            [("bestuurlijke-interventie", Change.CHANGED, ("when.category",))],
        ),
        (lambda t: t + NEW_RULE, [("gemeente-leest-adviezen-extra", Change.ADDED, ())]),
        (
            lambda t: t.replace(
                "    reason: An author always reads its own step outputs.",
                "    reason: Authors read their own outputs.",
            ),
            [("eigen-producten", Change.CHANGED, ("reason",))],
        ),
    ],
)
def test_rule_diffs(
    shipped_pack: Pack,
    edit: Callable[[str], str],
    expected: list[tuple[str, Change, tuple[str, ...]]],
) -> None:
    changed = shipped_pack.with_changes({RULES_30: edit(shipped(RULES_30))})
    result = diff_packs(analyse_pack(shipped_pack), analyse_pack(changed))
    assert [
        (r.rule_id, r.change, tuple(f.field for f in r.fields)) for r in result.rules
    ] == expected
    [file_diff] = result.files
    assert file_diff.path == RULES_30 and file_diff.change is Change.CHANGED


def test_a_removed_rule_and_a_deleted_file(shipped_pack: Pack) -> None:
    changed = shipped_pack.with_changes({"rules/40-onderzoek.yaml": None})
    result = diff_packs(analyse_pack(shipped_pack), analyse_pack(changed))
    assert result.rules and {r.change for r in result.rules} == {Change.REMOVED}
    assert [(f.path, f.change) for f in result.files] == [
        ("rules/40-onderzoek.yaml", Change.REMOVED)
    ]
    assert result.files[0].added_lines == 0 and result.files[0].removed_lines > 10


def test_replay_counts_each_kind_of_flip(shipped_pack: Pack) -> None:
    text = widened_rules().replace(
        "category: [police-incident, kmar-observation, om-case, labour-inspection]\n"
        "      relation: other\n    obligations: [summary-only]",
        "category: [police-incident, kmar-observation, om-case, labour-inspection]\n"
        "      relation: other\n    obligations: [summary-only, remove-free-text]",
    )
    text = text.replace("om-case, labour-inspection]", "labour-inspection]", 1)  # drop om-case
    proposed = shipped_pack.with_changes({RULES_30: text})
    requests = [
        recorded(gemeente_reads("labour-inspection"), 1),  # deny -> allow
        recorded(gemeente_reads("om-case"), 2),  # allow -> deny
        recorded(gemeente_reads("police-incident"), 3),  # obligations change
        recorded(gemeente_reads("police-incident"), 4),
        recorded(gemeente_reads("fiscal", 3, "integrale-aanpak-ondermijning"), 5),  # no flip
    ]
    result = replay(
        requests, engine_for(shipped_pack), engine_for(proposed), since=AT, until=AT, limit=2
    )
    assert result.replayed == 5 and result.distinct_requests == 4 and result.flip_count == 4
    assert result.counts == {
        FlipKind.ALLOW_TO_DENY.value: 1,
        FlipKind.DENY_TO_ALLOW.value: 1,
        FlipKind.OBLIGATIONS.value: 2,
    }
    assert result.truncated and len(result.flips) == 2
    assert result.by_step == {"5": {"allow->deny": 1, "deny->allow": 1, "obligations-changed": 2}}
    assert result.by_rule["bestuurlijke-interventie -> bestuurlijke-interventie"] == {
        "obligations-changed": 2
    }
    assert result.by_rule["bestuurlijke-interventie -> default-deny"] == {"allow->deny": 1}
    assert list(result.by_partner) == ["gemeente-smallingerland"]


def test_a_broken_agreement_file_fails_the_check_with_its_path(shipped_pack: Pack) -> None:
    broken = shipped_pack.with_changes({"agreements/studie.yaml": "project: [unclosed"})
    with pytest.raises(SourceError) as info:
        check_pack(broken)
    assert str(info.value).startswith("agreements/studie.yaml:")
    listed = shipped_pack.with_changes({"agreements/studie.yaml": "- a list\n"})
    with pytest.raises(SourceError, match="an agreement is a YAML mapping"):
        check_pack(listed)
