"""Decision latency: the gateway's engine against raw pycasbin ``enforce_ex``.

Run with ``.venv/bin/python -m bench.decisions``. For the shipped pack (about 50 rules)
and a generated pack of about 5,000 rules it measures, in one run and over the same
compiled rows and requests: one raw pycasbin enforcer over all rows, the gateway cold
(cache cleared before every decision) and warm (cached). It prints medians, p99s and
the ratios raw/gateway (higher is better for the gateway).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from gateway.policy import tables
from gateway.policy.compiler import CompiledPolicy, compile_policy
from gateway.policy.decision import NONE, Action, Consent, DecisionRequest, Relation
from gateway.policy.engine import PolicyEngine, build_enforcer

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"


def generated_pack(folder: Path, rules: int, seed: int = 7) -> Path:
    """Write a pack of ``rules`` single-row rules over the shipped vocabulary; return it."""
    rng = random.Random(seed)
    shutil.copy(POLICIES / "model.conf", folder / "model.conf")
    shutil.copy(POLICIES / "vocabulary.yaml", folder / "vocabulary.yaml")
    (folder / "rules").mkdir()
    vocabulary = compile_policy(POLICIES).vocabulary

    def pick(domain: str) -> str:
        return rng.choice(sorted(vocabulary.domains[domain].concrete - {NONE}))

    lines = ["rules:"]
    obligations = ["[]", "[summary-only]", "[remove-free-text]", "[pseudonymise, remove-free-text]"]
    for n in range(rules):
        action = rng.choice([a for a in Action if not a.value.startswith("research:")])
        kind = pick("partner_kind")
        # a legal basis of the kind's own: lint refuses a rule pairing a kind with another's
        basis = rng.choice(sorted(vocabulary.own_bases(kind)) or [NONE])
        lines += [
            f"  - id: r{n}",
            f"    effect: {'deny' if n % 10 == 0 else 'allow'}",
            "    when:",
            f"      action: {action.value}",
            f"      partner_kind: {kind}",
            f"      role: {pick('role')}",
            f"      process: {pick('process')}",
            f"      step: '{pick('step')}'",
            f"      category: {pick('category')}",
            f"      legal_basis: {basis}",
            f"      purpose: {pick('purpose')}",
        ]
        if n % 10 != 0:
            lines.append(f"    obligations: {rng.choice(obligations)}")
        lines += [f"    reason: Generated rule {n}.", "    source: bench"]
    (folder / "rules" / "generated.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def generated_requests(
    compiled: CompiledPolicy, count: int, seed: int = 11
) -> list[DecisionRequest]:
    """Return requests of which about half match a rule exactly and half match none."""
    rng = random.Random(seed)
    rules = [r for r in compiled.rules if not r.generated]  # the vocabulary's guards
    result = []
    for n in range(count):
        rule = rng.choice(rules)
        p = {dim: rng.choice(rule.patterns[dim]) for dim in rule.patterns}
        result.append(
            DecisionRequest(
                partner_id=f"partner-{n % 17}",
                partner_kind=p["partner_kind"],
                role=p["role"],
                action=Action(p["action"]),
                process=p["process"],
                step=int(p["step"]) if n % 2 == 0 else (int(p["step"]) % 7) + 1,
                purpose=p["purpose"],
                category=p["category"],
                legal_basis=p["legal_basis"],
                provider_kind=NONE,
                relation=Relation.OTHER,
                consent=Consent.NOT_NEEDED,
            )
        )
    return result


def timed(call: Callable[[], object], before: Callable[[], None] | None = None) -> float:
    """Return the duration of one call in microseconds (``before`` runs untimed)."""
    if before is not None:
        before()
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000


def summary(samples: Sequence[float]) -> tuple[float, float]:
    """Return (median, p99) of samples."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(name: str, compiled: CompiledPolicy, requests: list[DecisionRequest]) -> None:
    """Measure and print one pack."""
    engine = PolicyEngine(compiled)
    raw = build_enforcer(compiled, compiled.rows)
    for request in requests:  # the same answers, or the comparison means nothing
        allowed, row = raw.enforce_ex(*request.values())
        decision = engine.decide(request)
        if decision.allowed != allowed or decision.rule_id != (row[-2] if row else "default-deny"):
            raise RuntimeError(f"engine and raw enforcer disagree on {request}")
    raw_us = [timed(partial(raw.enforce_ex, *r.values())) for r in requests]
    cold_us = [timed(partial(engine.decide, r), engine.clear_cache) for r in requests]
    for request in requests:
        engine.decide(request)
    warm_us = [timed(partial(engine.decide, r)) for r in requests * 5]
    (raw_med, raw_p99), (cold_med, cold_p99), (warm_med, warm_p99) = (
        summary(raw_us),
        summary(cold_us),
        summary(warm_us),
    )
    allowed = sum(1 for r in requests if engine.decide(r).allowed)
    print(
        f"\n{name}: {len(compiled.rules)} rules, {len(compiled.rows)} rows, "
        f"{len(requests)} requests ({allowed} allowed)"
    )
    print(
        f"  {'':24} {'median µs':>10} {'p99 µs':>10} {'raw/this median':>16} {'raw/this p99':>13}"
    )
    for label, med, p99 in (
        ("raw pycasbin enforce_ex", raw_med, raw_p99),
        ("gateway cold", cold_med, cold_p99),
        ("gateway warm", warm_med, warm_p99),
    ):
        print(f"  {label:24} {med:10.1f} {p99:10.1f} {raw_med / med:16.1f} {raw_p99 / p99:13.1f}")


def main() -> None:
    """Run the benchmark on the shipped pack and on a generated large pack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=5000, help="rules in the generated pack")
    parser.add_argument("--requests", type=int, default=300, help="requests per pack")
    args = parser.parse_args()

    shipped = compile_policy(POLICIES)
    requests = [e.request for e in tables.load_tables(POLICIES)]
    random.Random(3).shuffle(requests)
    measure("shipped pack", shipped, requests[: args.requests])

    with tempfile.TemporaryDirectory() as folder:
        pack = generated_pack(Path(folder), args.rules)
        large = compile_policy(pack, overlaps=False)
    measure("generated pack", large, generated_requests(large, args.requests))


if __name__ == "__main__":
    main()
