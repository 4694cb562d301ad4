"""A broken pack fails to compile with the file and line of each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.compiler import compile_policy
from gateway.yamlsource import SourceError
from tests.policy.helpers import add_rule_file, copy_pack, line_of

RULE = """\
rules:
  - id: extra-rule
    effect: {effect}
    when:
      action: case:record:read
      partner_kind: {kind}
      role: analyst
      process: casusaanpak
      step: "3"
      category: {category}
      legal_basis: {basis}
      relation: other
    obligations: {obligations}
    reason: A rule added by a test.
    source: Test
"""


def broken(tmp_path: Path, **fields: str) -> tuple[Path, SourceError]:
    values = {
        "effect": "allow",
        "kind": "gemeente",
        "category": "municipal",
        "basis": "avg-6-1-e",
        "obligations": "[remove-free-text]",
    }
    values.update(fields)
    pack = copy_pack(tmp_path)
    path = add_rule_file(pack, "90-test.yaml", RULE.format(**values))
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    return path, info.value


def only_problem_at(error: SourceError, path: Path, line: int) -> str:
    matching = [p for p in error.problems if p.path == path and p.line == line]
    assert matching, f"no problem at {path}:{line}; got:\n{error}"
    return matching[0].message


def test_the_shipped_pack_compiles() -> None:
    from tests.conftest import POLICIES

    compiled = compile_policy(POLICIES)
    assert len(compiled.rules) >= 40
    effects = [row[-3] for row in compiled.rows]
    assert effects == sorted(effects, key=lambda e: e != "deny")  # deny rows first


def test_unknown_category(tmp_path: Path) -> None:
    path, error = broken(tmp_path, category="police-incidents")
    message = only_problem_at(error, path, line_of(path, "category:"))
    assert "unknown category 'police-incidents'" in message
    assert f"{path}:{line_of(path, 'category:')}: unknown category" in str(error)


def test_unknown_legal_basis(tmp_path: Path) -> None:
    path, error = broken(tmp_path, basis="wpg-21")
    assert "unknown legal basis 'wpg-21'" in only_problem_at(error, path, line_of(path, "legal_"))


def test_typo_in_a_partner_kind(tmp_path: Path) -> None:
    path, error = broken(tmp_path, kind="[gemente]")
    message = only_problem_at(error, path, line_of(path, "partner_kind:"))
    assert "unknown partner kind 'gemente'" in message


def test_overlapping_allow_and_deny(tmp_path: Path) -> None:
    # gemeente reading fiscal data at step 3 collides with the guard rail fiscaal-alleen-43c.
    path, error = broken(tmp_path, category="fiscal", basis="awr-43c")
    message = only_problem_at(error, path, line_of(path, "- id: extra-rule"))
    assert "overlaps deny rule 'fiscaal-alleen-43c'" in message
    assert "00-guardrails.yaml" in message


def test_overlapping_allows_with_different_obligations(tmp_path: Path) -> None:
    path, error = broken(tmp_path, category="social-security", obligations="[summary-only]")
    message = only_problem_at(error, path, line_of(path, "- id: extra-rule"))
    assert "'gemeente-leest-suwi'" in message and "different obligations" in message


def test_allow_without_required_obligations(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    path = add_rule_file(
        pack,
        "90-test.yaml",
        """\
rules:
  - id: extract-zonder-waarborgen
    effect: allow
    when:
      action: research:extract:release
      partner_kind: science
      role: privacy-officer
      consent: given
    obligations: [pseudonymise]
    reason: Too generous.
    source: Test
""",
    )
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    message = only_problem_at(info.value, path, line_of(path, "obligations:"))
    assert "must impose generalise-birth-date" in message


@pytest.mark.parametrize(
    ("text", "needle", "message"),
    [
        ("      purpose: doel-bestaat-niet\n", "purpose:", "unknown purpose"),
        ("      steps: '3'\n", "steps:", "unknown condition 'steps'"),
        ("      relation: eigen\n", "relation:", "unknown relation 'eigen'"),
        (
            "      partner_kind: {not: [riec, gemeente, politie, om, belastingdienst, nla, kmar,"
            " uwv, ind, provincie, bank, telecom, science, none]}\n",
            "partner_kind",
            "covers no",
        ),
    ],
)
def test_more_name_mistakes(tmp_path: Path, text: str, needle: str, message: str) -> None:
    pack = copy_pack(tmp_path)
    rule = RULE.format(
        effect="allow",
        kind="gemeente",
        category="municipal",
        basis="avg-6-1-e",
        obligations="[remove-free-text]",
    ).replace(
        "      partner_kind: gemeente\n",
        "" if "partner_kind" in text else "      partner_kind: gemeente\n",
    )
    rule = rule.replace(
        "      relation: other\n", text if "relation" in text else "      relation: other\n" + text
    )
    path = add_rule_file(pack, "90-test.yaml", rule)
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    assert message in only_problem_at(info.value, path, line_of(path, needle))


def test_deny_with_obligations_and_duplicate_ids(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    path = add_rule_file(
        pack,
        "90-test.yaml",
        """\
rules:
  - id: eigen-gegevens
    effect: deny
    when: {action: case:record:read, role: operator}
    reason: A duplicate id.
    source: Test
  - id: deny-met-verplichtingen
    effect: deny
    when: {action: case:record:read, role: operator}
    obligations: [summary-only]
    reason: A deny with obligations.
    source: Test
""",
    )
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    messages = [str(p) for p in info.value.problems if p.path == path]
    assert any(":2: rule id 'eigen-gegevens' is also used at" in m for m in messages)
    assert any(":10: deny-met-verplichtingen: a deny has no obligations" in m for m in messages)


def test_vocabulary_mistakes_name_their_line(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    vocabulary = pack / "vocabulary.yaml"
    text = vocabulary.read_text(encoding="utf-8")
    vocabulary.write_text(
        text.replace("members: [uwv, nla, gemeente]", "members: [uwv, nla, gemeentes]").replace(
            "      subject_bsn: identifier:bsn\n", "      subject_bsn: identifier:sofi\n", 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    text = str(info.value)
    assert f"{vocabulary}:{line_of(vocabulary, 'gemeentes')}: group 'suwi-partners'" in text
    assert f"{vocabulary}:{line_of(vocabulary, 'identifier:sofi')}:" in text


def test_eval_in_the_model_is_refused(tmp_path: Path) -> None:
    pack = copy_pack(tmp_path)
    model = pack / "model.conf"
    model.write_text(
        model.read_text(encoding="utf-8").replace(
            "m = r.act == p.act", "m = eval(p.x) && r.act == p.act"
        ),
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as info:
        compile_policy(pack)
    assert f"{model}:{line_of(model, 'm = eval(')}: the model must not use eval()" in str(
        info.value
    )
