"""The engine: default deny, unknown names, caching, partitions, atomic swaps under threads."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench.decisions import generated_pack, generated_requests
from gateway.policy import tables
from gateway.policy.compiler import CompiledPolicy, compile_policy
from gateway.policy.decision import Action, Decision, DecisionRequest, Relation
from gateway.policy.engine import PolicyEngine, build_enforcer
from gateway.policy.errors import UnknownTermError
from gateway.policy.explain import explain
from gateway.policy.partitions import (
    PARTITION_ABOVE,
    hierarchical_positions,
    top_level_conjuncts,
)
from tests.conftest import POLICIES
from tests.policy.helpers import copy_pack

COMPILED = compile_policy(POLICIES)
REQUESTS = [e.request for e in tables.load_tables(POLICIES)]


def gemeente_reads(category: str) -> DecisionRequest:
    return DecisionRequest(
        partner_id="gemeente-smallingerland",
        partner_kind="gemeente",
        role="analyst",
        action=Action.RECORD_READ,
        process="casusaanpak",
        step=3,
        purpose="integrale-aanpak-ondermijning",
        category=category,
        relation=Relation.OTHER,
    )


def test_default_deny_says_so() -> None:
    engine = PolicyEngine(COMPILED)
    decision = engine.decide(
        DecisionRequest("x", "gemeente", "analyst", Action.CASE_CREATE, "casusaanpak", 1)
    )
    assert not decision.allowed
    assert decision.is_default_deny
    assert "no rule allows this" in decision.reason.lower()
    assert decision.policy_version == COMPILED.version


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("category", "police-incidents"),
        ("partner_kind", "gemente"),
        ("purpose", "interventies"),  # a group: rules may name it, requests may not
        ("legal_basis", "wpg-21"),
    ],
)
def test_unknown_names_in_a_request_are_refused(attribute: str, value: str) -> None:
    engine = PolicyEngine(COMPILED)
    fields = gemeente_reads("police-incident").to_dict() | {attribute: value}
    with pytest.raises(UnknownTermError) as info:
        engine.decide(DecisionRequest.from_dict(fields))
    assert info.value.extensions["attribute"] == attribute
    # names the attribute (and lists known terms), never echoes the value asked about
    assert attribute.replace("_", " ") in info.value.detail
    assert repr(value) not in info.value.detail


def test_decisions_are_cached_per_version_and_bounded() -> None:
    engine = PolicyEngine(COMPILED, cache_size=2)
    first = engine.decide(gemeente_reads("police-incident"))
    assert engine.decide(gemeente_reads("police-incident")) is first
    engine.decide(gemeente_reads("fiscal"))
    engine.decide(gemeente_reads("om-case"))
    assert len(engine._loaded.cache) <= 2
    engine.clear_cache()
    assert engine.decide(gemeente_reads("police-incident")) == first


def test_partitioned_engine_agrees_with_one_raw_enforcer_over_all_rows() -> None:
    engine = PolicyEngine(COMPILED)
    raw = build_enforcer(COMPILED, COMPILED.rows)
    for request in REQUESTS:
        decision = engine.decide(request)
        allowed, row = raw.enforce_ex(*request.values())
        assert decision.allowed == allowed
        assert decision.rule_id == (row[-2] if row else "default-deny")


def test_the_version_is_a_content_hash(tmp_path: Path) -> None:
    assert compile_policy(POLICIES).version == COMPILED.version
    pack = copy_pack(tmp_path)
    rules = pack / "rules" / "20-delen-en-analyseren.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("in full to make", "in full, to make"),
        encoding="utf-8",
    )
    assert compile_policy(pack).version != COMPILED.version


def other_policy(tmp_path: Path) -> CompiledPolicy:
    """The shipped pack with hit/no-hit denied and the gemeente summary changed."""
    pack = copy_pack(tmp_path)
    step12 = pack / "rules" / "10-signaal-en-verkennen.yaml"
    step12.write_text(
        step12.read_text(encoding="utf-8").replace(
            "  - id: hit-no-hit\n    effect: allow", "  - id: hit-no-hit\n    effect: deny"
        ),
        encoding="utf-8",
    )
    step3 = pack / "rules" / "20-delen-en-analyseren.yaml"
    text = step3.read_text(encoding="utf-8")
    marker = "  - id: gemeente-ziet-samenvatting-strafrechtelijk"
    head, tail = text.split(marker)
    tail = tail.replace("obligations: [summary-only]", "obligations: [remove-free-text]", 1)
    step3.write_text(head + marker + tail, encoding="utf-8")
    return compile_policy(pack)


def test_swap_under_concurrent_decisions_never_mixes_versions(tmp_path: Path) -> None:
    a, b = COMPILED, other_policy(tmp_path)
    assert a.version != b.version
    requests = REQUESTS[::2]
    engines = [PolicyEngine(a), PolicyEngine(b)]
    expected: dict[str, list[Decision]] = {
        e.version: [e.decide(r) for r in requests] for e in engines
    }
    assert expected[a.version] != expected[b.version]
    engine = PolicyEngine(a)
    stop = threading.Event()
    problems: list[str] = []
    seen: set[str] = set()

    def worker(offset: int) -> None:
        try:
            while not stop.is_set():
                for i in range(offset, len(requests), 2):
                    decision = engine.decide(requests[i])
                    seen.add(decision.policy_version)
                    if decision != expected[decision.policy_version][i]:
                        problems.append(f"request {i}: {decision} mixes versions")
        except Exception as exc:  # any error in a reader is a failure of the swap
            problems.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(8):
            engine.swap(b if n % 2 == 0 else a)
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert problems == []
    assert seen == {a.version, b.version}
    assert engine.version == a.version


def test_explain_names_the_rule_and_the_nearest_misses() -> None:
    result = explain(PolicyEngine(COMPILED), gemeente_reads("fiscal"))
    assert result.rule is not None and result.rule.id == "fiscaal-alleen-43c"
    assert result.near_misses
    first = result.near_misses[0]
    assert first.rule.allows
    assert len(first.reasons) == 1
    default = explain(
        PolicyEngine(COMPILED),
        DecisionRequest("x", "gemeente", "analyst", Action.CASE_CREATE, "casusaanpak", 1),
        nearest=len(COMPILED.rules),
    )
    assert default.rule is None
    casus = [m for m in default.near_misses if m.rule.id == "casus-aanmaken"]
    assert casus and any("partner kind is 'gemeente'" in r for r in casus[0].reasons)


@pytest.fixture(scope="module")
def large_pack(tmp_path_factory: pytest.TempPathFactory) -> CompiledPolicy:
    folder = tmp_path_factory.mktemp("large-pack")
    return compile_policy(generated_pack(folder, 2000), overlaps=False)


def test_a_large_action_is_split_and_decides_as_one_raw_enforcer(
    large_pack: CompiledPolicy,
) -> None:
    engine = PolicyEngine(large_pack)
    raw = build_enforcer(large_pack, large_pack.rows)
    requests = generated_requests(large_pack, 150)
    vocabulary = large_pack.vocabulary
    # every concrete category and every step, on a few requests
    for base in requests[:3]:
        requests += [
            replace(base, category=t) for t in sorted(vocabulary.domains["category"].concrete)
        ]
        requests += [replace(base, step=s) for s in range(1, 8)]
    allowed = 0
    for request in requests:
        engine.clear_cache()
        decision = engine.decide(request)
        expected_allowed, row = raw.enforce_ex(*request.values())
        assert (decision.allowed, decision.rule_id) == (
            expected_allowed,
            row[-2] if row else "default-deny",
        ), request
        allowed += decision.allowed
    assert 0 < allowed < len(requests)
    # a cold decision scans a small share of its action's rows, not all of them
    largest_action = max(
        Counter(row[3] for row in large_pack.rows).values()  # column 3: the action
    )
    assert largest_action > PARTITION_ABOVE
    assert max(engine.rows_scanned(r) for r in requests) < largest_action / 3


def test_a_matcher_without_a_hierarchy_conjunct_is_not_split() -> None:
    assert hierarchical_positions('r_act == p_act && (g(r_kind, p_kind) || r_pid == "x")') == {}
    assert hierarchical_positions("r_act == p_act && g6(r_cat, p_cat)") == {7: "g6"}
    assert top_level_conjuncts("a && (b && c) && d") == ["a", "(b && c)", "d"]
