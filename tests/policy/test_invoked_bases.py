"""A legal basis belongs to the partner kinds that invoke it (``invoked_by``).

The vocabulary ties every legal basis to its kinds; the compiler derives deny rules from
that, so the engine refuses a basis of another kind of partner (as asker for submitting,
recording and providing, as provider for everything else), and lint refuses an allow
rule whose partner kinds and legal bases intersect wrongly, naming file, line and rule.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import run
from gateway.policy.compiler import compile_policy
from gateway.policy.decision import Action, DecisionRequest, Relation
from gateway.policy.engine import PolicyEngine, build_enforcer
from gateway.policy.explain import explain
from gateway.policy.vocabulary import load_vocabulary
from gateway.yamlsource import SourceError
from tests.conftest import POLICIES
from tests.policy.helpers import add_rule_file, copy_pack, line_of

COMPILED = compile_policy(POLICIES)
ENGINE = PolicyEngine(COMPILED)

CRAFTED = """\
rules:
  - id: gemeente-signaleert-als-politie
    effect: allow
    when:
      action: {action}
      partner_kind: {kind}
      role: partner-system
      process: casusaanpak
      step: "{step}"
      purpose: {purpose}
      category: {category}
{basis}
      relation: own
    obligations: {obligations}
    reason: A crafted rule that lets a kind use a basis that is not its own.
    source: Test
"""


def crafted(tmp_path: Path, **fields: str) -> tuple[Path, Path]:
    values = {
        "action": "case:signal:submit",
        "kind": "gemeente",
        "step": "1",
        "purpose": "signaalbeoordeling",
        "category": "signal",
        "basis": "      legal_basis: wpg-20",
        "obligations": "[]",
    }
    values.update(fields)
    pack = copy_pack(tmp_path)
    return pack, add_rule_file(pack, "90-crafted.yaml", CRAFTED.format(**values))


def refused(pack: Path) -> SourceError:
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    return info.value


def signal(kind: str, basis: str) -> DecisionRequest:
    return DecisionRequest(
        partner_id="example",
        partner_kind=kind,
        role="partner-system",
        action=Action.SIGNAL_SUBMIT,
        process="casusaanpak",
        step=1,
        purpose="signaalbeoordeling",
        category="signal",
        legal_basis=basis,
        relation=Relation.OWN,
    )


def test_every_legal_basis_names_the_kinds_that_invoke_it() -> None:
    vocabulary = load_vocabulary(POLICIES)
    bases = vocabulary.domains["legal_basis"].concrete - {"none"}
    assert set(vocabulary.invoked_by) == bases
    assert all(vocabulary.invoked_by[b] for b in bases)
    assert vocabulary.invokers("wpg-20") >= {"politie"}
    assert "gemeente" not in vocabulary.invokers("wpg-20")
    assert vocabulary.invokers("wjsg-39f") == {"om"}
    assert vocabulary.invokers("awr-43c") == {"belastingdienst"}
    assert vocabulary.invokers("suwi-64") == {"uwv", "nla", "gemeente"}
    assert vocabulary.invokers("avg-6-1-f") == {"bank", "telecom"}
    assert vocabulary.invokers("riec-convenant") == {"riec"}
    assert "bank" not in vocabulary.invokers("wpg-22-bpg-4-7")


@pytest.mark.parametrize(
    ("kind", "basis"),
    [
        ("gemeente", "wpg-20"),
        ("gemeente", "wpg-19"),
        ("gemeente", "wjsg-39f"),
        ("gemeente", "awr-43c"),
        ("politie", "awr-43c"),
        ("politie", "avg-6-1-e"),
        ("om", "wpg-20"),
        ("belastingdienst", "suwi-64"),
        ("uwv", "riec-convenant"),
        ("riec", "wpg-20"),
        ("provincie", "avg-10-uavg-33"),
    ],
)
def test_a_signal_under_a_basis_of_another_kind_is_refused_with_that_reason(
    kind: str, basis: str
) -> None:
    decision = ENGINE.decide(signal(kind, basis))
    assert not decision.allowed
    assert decision.is_foreign_basis
    assert decision.rule_id == f"eigen-grondslag-{kind}"
    assert "legal basis of its own" in decision.reason
    assert "invoked_by" in decision.source


@pytest.mark.parametrize(
    ("kind", "basis"),
    [
        ("gemeente", "avg-6-1-e"),
        ("gemeente", "avg-10-uavg-33"),
        ("gemeente", "suwi-64"),
        ("politie", "wpg-20"),
        ("kmar", "wpg-19"),
        ("om", "wjsg-39f"),
        ("belastingdienst", "awr-43c"),
        ("uwv", "suwi-64"),
        ("riec", "riec-convenant"),
    ],
)
def test_a_signal_under_the_partners_own_basis_is_allowed(kind: str, basis: str) -> None:
    assert ENGINE.decide(signal(kind, basis)).allowed


@pytest.mark.parametrize(
    ("kind", "basis", "category"),
    [
        ("bank", "wpg-22-bpg-4-7", "money-mule-alert"),
        ("telecom", "wjsg-15-39g", "sim-swap"),
        ("gemeente", "wpg-22-bpg-4-7", "youth-registration"),
        ("politie", "avg-6-1-f", "research-incident"),
        ("om", "avg-6-1-e-onderzoek", "research-om-case"),
    ],
)
def test_research_rows_under_a_basis_of_another_kind_are_refused(
    kind: str, basis: str, category: str
) -> None:
    request = DecisionRequest(
        partner_id="example",
        partner_kind=kind,
        role="partner-system",
        action=Action.ROWS_SUBMIT,
        purpose="wetenschappelijk-onderzoek",
        category=category,
        legal_basis=basis,
        provider_kind=kind,
        relation=Relation.OWN,
    )
    decision = ENGINE.decide(request)
    assert not decision.allowed
    assert decision.rule_id == f"eigen-grondslag-{kind}"


@pytest.mark.parametrize(
    ("action", "kind", "role", "extra"),
    [
        (Action.RECORD_SHARE, "gemeente", "partner-system", {"category": "municipal", "step": 3}),
        (Action.DECISION_RECORD, "riec", "riec-analyst", {"category": "go-decision", "step": 2}),
        (Action.CONSENT_RECORD, "bank", "privacy-officer", {}),
    ],
)
def test_every_action_that_names_the_askers_basis_refuses_a_foreign_one(
    action: Action, kind: str, role: str, extra: dict[str, object]
) -> None:
    fields: dict[str, object] = {
        "partner_kind": kind,
        "role": role,
        "action": action.value,
        "process": "casusaanpak",
        "purpose": "integrale-aanpak-ondermijning",
        "legal_basis": "wpg-20",
        "relation": "own",
        **extra,
    }
    decision = ENGINE.decide(DecisionRequest.from_dict(fields))
    assert not decision.allowed and decision.rule_id == f"eigen-grondslag-{kind}"


def test_data_resting_on_a_basis_not_its_providers_is_never_read_or_released() -> None:
    read = DecisionRequest(
        partner_id="riec-noord-nederland",
        partner_kind="riec",
        role="riec-analyst",
        action=Action.RECORD_READ,
        process="casusaanpak",
        step=3,
        purpose="integrale-aanpak-ondermijning",
        category="municipal",
        legal_basis="wpg-20",
        provider_kind="gemeente",
        relation=Relation.OTHER,
    )
    assert ENGINE.decide(read).rule_id == "grondslag-van-verstrekker-gemeente"
    own = DecisionRequest.from_dict({**read.to_dict(), "legal_basis": "avg-6-1-e"})
    assert ENGINE.decide(own).allowed


def test_the_engine_and_a_raw_enforcer_agree_on_the_derived_rules() -> None:
    raw = build_enforcer(COMPILED, COMPILED.rows)
    request = signal("gemeente", "wpg-20")
    allowed, row = raw.enforce_ex(*request.values())
    assert not allowed and row[-2] == "eigen-grondslag-gemeente"


def test_explain_shows_where_the_derived_rule_comes_from() -> None:
    result = explain(ENGINE, signal("gemeente", "wpg-20"))
    assert result.rule is not None and result.rule.id == "eigen-grondslag-gemeente"
    assert result.rule.path.name == "vocabulary.yaml"


def test_lint_refuses_a_rule_letting_a_municipality_signal_under_the_police_basis(
    tmp_path: Path,
) -> None:
    pack, path = crafted(tmp_path)
    error = refused(pack)
    line = line_of(path, "legal_basis:")
    found = [p for p in error.problems if p.path == path and p.line == line]
    assert found, str(error)
    message = found[0].message
    assert "'gemeente-signaleert-als-politie'" in message
    assert "wpg-20" in message and "gemeente" in message and "not its own" in message


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        # a bank delivering research rows under the police's research basis
        (
            {
                "action": "research:rows:submit",
                "kind": "bank",
                "step": "none",
                "purpose": "wetenschappelijk-onderzoek",
                "category": "money-mule-alert",
                "basis": "      legal_basis: wpg-22-bpg-4-7",
                "obligations": "[pseudonymise]",
            },
            "wpg-22-bpg-4-7",
        ),
        # leaving the basis open lets the kind name any basis, the police's included
        ({"basis": ""}, "wpg-20"),
        # leaving the kind open lets any kind name the police's basis
        ({"kind": "convenantpartners"}, "wpg-20"),
        # a group of bases that mixes the kind's own with another's
        ({"basis": "      legal_basis: [avg-6-1-e, awr-43c]"}, "awr-43c"),
        # sharing into a case
        (
            {
                "action": "case:record:share",
                "step": "3",
                "purpose": "integrale-aanpak-ondermijning",
                "category": "municipal",
            },
            "wpg-20",
        ),
        # the go decision, by another kind than the one its basis belongs to
        (
            {
                "action": "case:decision:record",
                "kind": "politie",
                "step": "2",
                "purpose": "integrale-aanpak-ondermijning",
                "category": "go-decision",
                "basis": "      legal_basis: riec-convenant",
            },
            "riec-convenant",
        ),
    ],
)
def test_lint_refuses_every_rule_whose_kinds_and_bases_intersect_wrongly(
    tmp_path: Path, fields: dict[str, str], why: str
) -> None:
    pack, path = crafted(tmp_path, **fields)
    error = refused(pack)
    messages = [p.message for p in error.problems if p.path == path]
    assert any("not its own" in m and why in m for m in messages), str(error)


def test_lint_refuses_a_read_rule_pairing_a_provider_with_a_foreign_basis(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    path = add_rule_file(
        pack,
        "90-crafted.yaml",
        """\
rules:
  - id: lees-gemeentegegevens-onder-wpg
    effect: allow
    when:
      action: case:record:read
      partner_kind: riec
      role: riec-analyst
      process: casusaanpak
      step: "3"
      purpose: integrale-aanpak-ondermijning
      category: municipal
      legal_basis: wpg-20
      provider_kind: gemeente
      relation: other
    reason: A crafted rule.
    source: Test
""",
    )
    error = refused(pack)
    assert any(p.path == path and "not its own" in p.message for p in error.problems), str(error)


def test_a_deny_rule_may_name_any_kind_and_basis(tmp_path: Path) -> None:
    pack, _path = crafted(tmp_path)
    text = (pack / "rules" / "90-crafted.yaml").read_text(encoding="utf-8")
    (pack / "rules" / "90-crafted.yaml").write_text(
        text.replace("effect: allow", "effect: deny").replace("    obligations: []\n", ""),
        encoding="utf-8",
    )
    compile_policy(pack)


def test_derived_rule_ids_are_reserved(tmp_path: Path) -> None:
    pack, path = crafted(
        tmp_path, basis="      legal_basis: avg-6-1-e", kind="gemeente", obligations="[]"
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("gemeente-signaleert-als-politie", "eigen-grondslag-gemeente"), "utf-8"
    )
    error = refused(pack)
    assert any("reserved" in p.message for p in error.problems), str(error)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "    invoked_by: [om]\n  awr-43c",
            "    invoked_by: [om, bakkerij]\n  awr-43c",
            "[om, bakkerij]",
            "unknown partner kind 'bakkerij'",
        ),
        (
            "    invoked_by: [belastingdienst]",
            "",
            "  awr-43c:",
            "must name the partner kinds that invoke it",
        ),
        (
            "    invoked_by: [om]\n  awr-43c",
            "    invoked_by: [none]\n  awr-43c",
            "[none]",
            "unknown partner kind 'none'",
        ),
    ],
)
def test_invoked_by_mistakes_name_their_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    pack = copy_pack(tmp_path)
    vocabulary = pack / "vocabulary.yaml"
    text = vocabulary.read_text(encoding="utf-8")
    assert old in text
    vocabulary.write_text(text.replace(old, new, 1), encoding="utf-8")
    error = refused(pack)
    line = line_of(vocabulary, needle)
    assert any(
        p.path == vocabulary and p.line == line and message in p.message for p in error.problems
    ), str(error)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    return tmp_path


def test_policy_lint_names_file_line_and_rule_of_a_crafted_rule(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack, path = crafted(env)
    assert run(["policy", "lint", "--policies", str(pack)]) == 1
    err = capsys.readouterr().err
    where = f"{path}:{line_of(path, 'legal_basis:')}"
    assert f"{where}: allow rule 'gemeente-signaleert-als-politie'" in err
    assert run(["policy", "lint", "--policies", str(POLICIES)]) == 0
