"""The register of processing activities (AVG art. 30): compiled with the pack, every
processing about a person resolved to exactly one activity, mistakes named by line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.audit.events import AuditEventType
from gateway.policy.compiler import compile_policy
from gateway.policy.errors import ActivityNotFoundError
from gateway.policy.register import (
    ACTIVITY_PREFIX,
    SUBJECT_EVENTS,
    resolve_activity,
)
from gateway.yamlsource import SourceError
from tests.conftest import POLICIES
from tests.policy.helpers import copy_pack, line_of

SHIPPED = compile_policy(POLICIES)
REGISTER = SHIPPED.register


def edited(tmp_path: Path, path: str, old: str, new: str) -> Path:
    pack = copy_pack(tmp_path)
    target = pack / path
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return pack


def refused(pack: Path) -> SourceError:
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    return info.value


def test_the_shipped_register_compiles_with_every_art_30_field() -> None:
    assert len(REGISTER.activities) >= 5
    for activity in REGISTER.activities:
        public = activity.public()
        for key in ("controller", "data_subjects", "personal_data", "recipients", "retention"):
            assert public[key], (activity.id, key)
        assert public["transfers"] == "none" and public["security"]
        assert activity.version >= 1 and public["uri"] == ACTIVITY_PREFIX + activity.id
        assert public["art6"], activity.id


def test_every_event_that_can_name_a_person_resolves_for_every_purpose_and_basis() -> None:
    vocabulary = SHIPPED.vocabulary
    purposes = sorted(vocabulary.domains["purpose"].concrete)
    bases = sorted(vocabulary.domains["legal_basis"].concrete)
    assert "none" in purposes and "none" in bases
    missing = []
    for event in SUBJECT_EVENTS:
        for purpose in purposes:
            for basis in bases:
                try:
                    resolve_activity(REGISTER, event.value, purpose, basis)
                except ActivityNotFoundError:
                    missing.append((event.value, purpose, basis))
    assert missing == []
    # an event that names no purpose or basis resolves as `none`
    assert resolve_activity(REGISTER, AuditEventType.SUBJECT_LOG_READ, None, None)


def test_police_data_shared_in_a_case_is_its_own_activity_outside_the_avg() -> None:
    police = resolve_activity(
        REGISTER, "case:record:share", "integrale-aanpak-ondermijning", "wpg-20"
    )
    fiscal = resolve_activity(REGISTER, "case:record:share", "interventie-fiscaal", "awr-43c")
    assert police.id != fiscal.id
    assert police.art6 == ("niet-avg",)
    assert fiscal.public()["art6"] == [
        {"ground": "avg-6-1-e", "dpv": "https://w3id.org/dpv#PublicTask"}
    ]


def test_an_unknown_activity_or_processing_is_refused_with_its_own_code() -> None:
    with pytest.raises(ActivityNotFoundError) as info:
        REGISTER.get("bestaat-niet")
    assert info.value.code == "processing-activity-not-found"
    with pytest.raises(ActivityNotFoundError):
        resolve_activity(REGISTER, "admin:partner:add", None, None)
    assert REGISTER.get(ACTIVITY_PREFIX + "signaal-indienen").id == "signaal-indienen"


def test_research_rests_on_an_art_6_basis_with_art_89_as_a_safeguard() -> None:
    legal = SHIPPED.vocabulary.domains["legal_basis"]
    assert "avg-89-uavg-24" not in legal.terms
    research = legal.terms["avg-6-1-e-onderzoek"].info
    assert research["art6"] == "avg-6-1-e"
    assert research["safeguards"] == ["avg-89", "uavg-24"]
    for term in legal.terms.values():
        if not term.group and term.name != "none":
            assert term.info.get("art6"), term.name


RESEARCH_RETENTION = """  retention: >-
    Gepseudonimiseerde rijen tot het einde van de onderzoeksovereenkomst (daarna
    vernietigd); de regels van het verwerkingenlogboek ten minste vier jaar.
"""
RESEARCH_SUBJECTS = """  data_subjects:
    - Jongeren en andere personen over wie partners rijen aanleveren voor een onderzoek
    - Respondenten van een vragenlijst (met toestemming; ouders onder 16 jaar)
"""


@pytest.mark.parametrize(
    ("field", "old"), [("retention", RESEARCH_RETENTION), ("data_subjects", RESEARCH_SUBJECTS)]
)
def test_a_missing_art_30_field_is_refused_with_its_line(
    tmp_path: Path, field: str, old: str
) -> None:
    # the research activities take these fields from the `_onderzoek` anchor
    pack = edited(tmp_path, "register.yaml", old, "")
    error = refused(pack)
    line = line_of(pack / "register.yaml", "  - id: onderzoeksrijen-aanleveren")
    assert any(
        p.path.name == "register.yaml"
        and p.line == line
        and f"{field} (AVG art. 30)" in p.message
        and "onderzoeksrijen-aanleveren" in p.message
        for p in error.problems
    ), str(error)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    personal_data: [signal]", "    personal_data: [signaal]", "unknown category"),
        ("  transfers: none", "  transfers: [verenigde-staten]", "transfers"),
        ("    version: 1\n    name: Signaal", "    version: 0\n    name: Signaal", "version"),
        ("    events: [case:signal:submit]", "    events: [case:signal:sent]", "unknown event"),
        (
            "    recipients: [riec]\n\n  - id: signaal-verkennen",
            "    recipients: [bakkerij]\n\n  - id: signaal-verkennen",
            "unknown partner kind 'bakkerij'",
        ),
        ("  - id: signaal-verkennen", "  - id: signaal-indienen", "also used"),
    ],
)
def test_register_mistakes_name_file_and_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    error = refused(edited(tmp_path, "register.yaml", old, new))
    assert any(
        p.path.name == "register.yaml" and p.line > 0 and message in p.message
        for p in error.problems
    ), str(error)


def test_two_activities_for_one_processing_or_a_gap_are_refused(tmp_path: Path) -> None:
    overlap = refused(
        edited(
            tmp_path / "a",
            "register.yaml",
            "legal_bases: [wjsg-39f]",
            "legal_bases: [wjsg-39f, wpg-20]",
        )
    )
    assert any("covers already" in p.message for p in overlap.problems), str(overlap)
    gap = refused(edited(tmp_path / "b", "register.yaml", "      - wgs\n", ""))
    assert any(
        "'case:record:share' can name data subjects but no activity covers" in p.message
        and "x wgs" in p.message
        for p in gap.problems
    ), str(gap)


def test_art_89_is_refused_as_the_basis_of_an_activity(tmp_path: Path) -> None:
    error = refused(
        edited(
            tmp_path, "register.yaml", "legal_bases: [wjsg-39f]", "legal_bases: [avg-89-uavg-24]"
        )
    )
    assert any(
        "AVG art. 89 / UAVG art. 24 is not an art. 6 basis" in p.message for p in error.problems
    ), str(error)


@pytest.mark.parametrize("ground", ["avg-89", "uavg-24", "avg-89-uavg-24"])
def test_art_89_is_refused_as_the_art_6_ground_of_a_legal_basis(
    tmp_path: Path, ground: str
) -> None:
    pack = edited(
        tmp_path,
        "vocabulary.yaml",
        "    art6: avg-6-1-e\n    safeguards: [avg-89, uavg-24]",
        f"    art6: {ground}",
    )
    error = refused(pack)
    line = line_of(pack / "vocabulary.yaml", "  avg-6-1-e-onderzoek:")
    assert any(
        p.line == line and "not an art. 6 basis but a safeguard for research" in p.message
        for p in error.problems
    ), str(error)


def test_a_legal_basis_without_its_art_6_ground_is_refused(tmp_path: Path) -> None:
    error = refused(edited(tmp_path, "vocabulary.yaml", "    art6: avg-6-1-c  #", "    #"))
    assert any("legal basis 'suwi-64': art6 must be one of" in p.message for p in error.problems)


def test_a_register_change_is_a_new_policy_version(tmp_path: Path) -> None:
    pack = edited(
        tmp_path,
        "register.yaml",
        "    version: 1\n    name: Signaal",
        "    version: 2\n    name: Signaal",
    )
    changed = compile_policy(pack)
    assert changed.version != SHIPPED.version
    assert changed.register.get("signaal-indienen").version == 2
    assert changed.rows == SHIPPED.rows


def _events_logged_with_subjects() -> set[str]:
    """Every ``AuditEventType.X`` passed to a call that also passes ``subjects=`` or
    ``persons=`` (the subjects grouped by person)."""
    found: set[str] = set()
    for path in (POLICIES.parent / "gateway").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if not any(k.arg in ("subjects", "persons") for k in node.keywords):
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if (
                    isinstance(arg, ast.Attribute)
                    and isinstance(arg.value, ast.Name)
                    and arg.value.id == "AuditEventType"
                ):
                    found.add(AuditEventType[arg.attr].value)
    return found


def test_every_event_the_code_logs_with_subjects_is_a_subject_event() -> None:
    logged = _events_logged_with_subjects()
    assert {"case:record:share", "subject:processing-log:read"} <= logged
    assert logged <= {e.value for e in SUBJECT_EVENTS}


def test_a_pack_stored_before_registers_existed_still_compiles(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    (pack / "register.yaml").unlink()
    vocabulary = pack / "vocabulary.yaml"
    lines = vocabulary.read_text(encoding="utf-8").splitlines(keepends=True)
    vocabulary.write_text(
        "".join(line for line in lines if not line.startswith(("    art6:", "    safeguards:"))),
        encoding="utf-8",
    )
    legacy = compile_policy(pack)
    assert legacy.register.activities == ()
    with pytest.raises(ActivityNotFoundError):
        resolve_activity(legacy.register, "case:record:share", None, "wpg-20")
    # an art. 89 ground is refused even there
    text = vocabulary.read_text(encoding="utf-8")
    vocabulary.write_text(
        text.replace(
            '    article: "Wet SUWI art. 64"\n',
            '    article: "Wet SUWI art. 64"\n    art6: avg-89\n',
        ),
        encoding="utf-8",
    )
    assert "not an art. 6 basis" in str(refused(pack))
