"""An agreement's instrument is delivered under a legal basis of its providers' own kind.

A bank cannot be named to deliver under the police's research basis (Wpg art. 22), nor
a gemeente under the OM's; the mistake is reported with the agreement's file and line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.research.agreements import AgreementVocabulary, load_agreement
from gateway.yamlsource import SourceError
from tests.research.conftest import EXAMPLE

TEXT = EXAMPLE.read_text(encoding="utf-8")


def line_of(text: str, needle: str, after: int = 0) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if number > after and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the agreement")


@pytest.mark.parametrize(
    ("instrument", "basis", "partner", "kind"),
    [
        ("bank-money-mule-signalen", "wpg-22-bpg-4-7", "voorbeeldbank", "bank"),
        ("telecom-simswap-meldingen", "wjsg-15-39g", "voorbeeldtelecom", "telecom"),
        ("gemeenten-jeugdregistraties", "wpg-22-bpg-4-7", "gemeente-leeuwarden", "gemeente"),
        ("politie-incidenten", "avg-6-1-f", "politie-noord-nederland", "politie"),
    ],
)
def test_an_instrument_under_a_basis_its_provider_does_not_invoke_is_refused(
    tmp_path: Path,
    vocabulary: AgreementVocabulary,
    instrument: str,
    basis: str,
    partner: str,
    kind: str,
) -> None:
    head, tail = TEXT.split(f"  - id: {instrument}\n", 1)
    body, rest = tail.split("    fields:", 1)
    lines = [
        f"    legal_basis: {basis}" if line.startswith("    legal_basis:") else line
        for line in body.splitlines()
    ]
    text = head + f"  - id: {instrument}\n" + "\n".join(lines) + "\n    fields:" + rest
    path = tmp_path / "agreement.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SourceError) as info:
        load_agreement(path, vocabulary)
    line = line_of(text, f"    legal_basis: {basis}", line_of(text, f"- id: {instrument}"))
    found = [p for p in info.value.problems if p.line == line]
    assert found, str(info.value)
    message = found[0].message
    assert f"{partner!r} is a {kind}" in message and basis in message


def test_the_example_agreement_names_each_providers_own_basis(
    vocabulary: AgreementVocabulary,
) -> None:
    agreement = load_agreement(EXAMPLE, vocabulary)
    kinds = {p.partner: p.kind for p in agreement.providers}
    for instrument in agreement.instruments:
        for provider in instrument.providers:
            assert kinds[provider] in vocabulary.invoked_by[instrument.legal_basis]
