"""Researcher enrolment: own keys registered, confirmed by the partner's privacy officer.

Releases are encrypted to the confirmed keys only; with none there is no release; a
replaced key opens no later release; an agreement that pins another signing key gets
no release at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519
from sqlmodel import col, select

from gateway.errors import IntegrityCheckFailed
from gateway.models.audit import AuditEntry
from gateway.models.partners import Principal
from gateway.research.bundle import open_bundle, pinned_public_key
from gateway.research.errors import BundleError
from tests.research_api.conftest import AGREEMENT, HHS, NSCR, Study, officer, system

RECIPIENTS = f"/v1/research/agreements/{AGREEMENT}/recipients"


def register(study: Study, who: str, recipient: str) -> Any:
    """Register ``recipient`` as ``who``; return the response."""
    return study.call(who, "POST", RECIPIENTS, json={"recipient": recipient})


def confirm(study: Study, who: str, rid: str) -> Any:
    """Confirm recipient ``rid`` as ``who``; return the response."""
    return study.call(who, "POST", f"{RECIPIENTS}/{rid}/confirm")


def recipient_events(study: Study) -> list[dict[str, Any]]:
    """Return the refs of every audited recipient change, oldest first."""
    with study.gw.database.read() as session:
        leaves = session.exec(select(AuditEntry.leaf).order_by(col(AuditEntry.leaf_index))).all()
    refs = [json.loads(leaf).get("refs", {}) for leaf in leaves]
    return [r for r in refs if "recipient_change" in r]


def test_a_researcher_enrols_their_own_key_and_their_partners_officer_confirms_it(
    study: Study,
) -> None:
    key = str(x25519.Identity.generate().to_public())
    added = register(study, NSCR, key)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["status"] == "pending" and body["principal_id"] == NSCR
    assert body["added_by"] == NSCR and body["version"] == 1 and body["recipient"] == key

    # nobody but a privacy officer of the researcher's own partner confirms it
    for who in (NSCR, HHS, officer("riec-noord-nederland"), officer("gemeente-groningen")):
        refused = confirm(study, who, body["id"])
        assert refused.status_code == 403, (who, refused.text)
    done = confirm(study, officer("nscr"), body["id"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "confirmed"
    assert done.json()["confirmed_by"] == officer("nscr")
    assert confirm(study, officer("nscr"), body["id"]).status_code == 409

    listed = study.ok(officer("nscr"), "GET", RECIPIENTS)
    assert [r["id"] for r in listed] == [body["id"]] and listed[0]["status"] == "confirmed"
    changes = [(e["recipient_change"], e["recipient_id"]) for e in recipient_events(study)]
    assert changes == [("register", body["id"]), ("confirm", body["id"])]


def test_a_person_who_is_also_the_partners_officer_cannot_confirm_their_own_key(
    study: Study,
) -> None:
    # the same person under two principals (researcher and privacy officer): four eyes
    with study.gw.database.write() as session:
        researcher = session.get(Principal, NSCR)
        po = session.get(Principal, officer("nscr"))
        assert researcher is not None and po is not None and researcher.person_key
        po.person_key = researcher.person_key
        session.add(po)
    rid = register(study, NSCR, str(x25519.Identity.generate().to_public())).json()["id"]
    refused = confirm(study, officer("nscr"), rid)
    assert refused.status_code == 403, refused.text


def test_an_officer_cannot_confirm_a_key_they_registered_themselves(study: Study) -> None:
    # an officer is not a researcher, so cannot register; and the owner can never confirm
    key = str(x25519.Identity.generate().to_public())
    assert register(study, officer("nscr"), key).status_code == 403
    rid = register(study, NSCR, key).json()["id"]
    assert confirm(study, NSCR, rid).status_code == 403


@pytest.mark.parametrize(
    "who",
    [
        officer("nscr"),
        officer("riec-noord-nederland"),
        system("gemeente-groningen"),
        "gemeente-smallingerland.analyst",
        "riec-noord-nederland.riec-analyst",
        "riec-noord-nederland.operator",
    ],
)
def test_only_a_researcher_the_agreement_entitles_registers_a_key(study: Study, who: str) -> None:
    response = register(study, who, str(x25519.Identity.generate().to_public()))
    assert response.status_code == 403, response.text
    assert recipient_events(study) == []


def test_a_secret_key_or_junk_is_refused_and_never_quoted_back(study: Study) -> None:
    secret = str(x25519.Identity.generate())
    for value in (secret, "age1notakey", "ssh-ed25519 AAAA"):
        response = register(study, NSCR, value)
        assert response.status_code == 422, response.text
        assert value not in response.text
    assert recipient_events(study) == []


def test_a_release_is_refused_until_a_researchers_key_is_confirmed(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    study.enrolled.add(AGREEMENT)  # the study's own enrolment is what this test does by hand
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    refused = study.release()
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("no-confirmed-recipient")
    rid = register(study, NSCR, str(study.identities[0].to_public())).json()["id"]
    assert study.release().status_code == 409  # pending is not enough
    confirm(study, officer("nscr"), rid)
    released = study.release()
    assert released.status_code == 201, released.text


def test_a_replaced_key_opens_no_later_release(
    study: Study, synthetic_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    first = study.released()  # enrols identities[0]
    old = study.identities[0]
    new = x25519.Identity.generate()
    replacement = register(study, NSCR, str(new.to_public())).json()
    listed = {r["id"]: r for r in study.ok(officer("nscr"), "GET", RECIPIENTS)}
    revoked = [r for r in listed.values() if r["status"] == "revoked"]
    assert len(revoked) == 1 and revoked[0]["replaced_by"] == replacement["id"]
    assert study.release().status_code == 409  # the new key is not confirmed yet
    confirm(study, officer("nscr"), replacement["id"])
    second = study.released()

    key = study.signing_key()
    bundle = study.download(second["id"])
    with pytest.raises(BundleError):
        open_bundle(bundle, key, [old], tmp_path / "old")
    assert open_bundle(bundle, key, [new], tmp_path / "new")
    assert open_bundle(study.download(first["id"]), key, [old], tmp_path / "first")


def test_a_release_is_refused_when_the_agreement_pins_another_signing_key(
    study: Study, synthetic_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    ctx = study.gw.client.app.state.ctx  # type: ignore[attr-defined]
    agreement = ctx.agreements[AGREEMENT]
    ctx.agreements[AGREEMENT] = agreement.model_copy(
        update={"signing_key_fingerprint": "sha256:" + "ab" * 32}
    )
    refused = study.release()
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("signing-key-not-pinned")
    assert ctx.signer.fingerprint in refused.json()["detail"]

    pin = "sha256:" + ctx.signer.fingerprint
    ctx.agreements[AGREEMENT] = agreement.model_copy(update={"signing_key_fingerprint": pin})
    released = study.released()
    shown = study.ok(NSCR, "GET", f"/v1/research/agreements/{AGREEMENT}")
    assert shown["signing_key_fingerprint"] == pin
    with pytest.raises(IntegrityCheckFailed):
        pinned_public_key(study.download(released["id"]), "cd" * 32)


def test_a_key_of_a_researcher_the_agreement_no_longer_names_is_not_released_to(
    study: Study, synthetic_rows: list[dict[str, Any]]
) -> None:
    study.consent_all()
    study.submit_synthetic(synthetic_rows)
    assert study.release().status_code == 201  # enrols and confirms the NSCR researcher's key
    ctx = study.gw.client.app.state.ctx  # type: ignore[attr-defined]
    agreement = ctx.agreements[AGREEMENT]
    unnamed = tuple(r.model_copy(update={"principal": None}) for r in agreement.researchers)
    ctx.agreements[AGREEMENT] = agreement.model_copy(update={"researchers": unnamed})
    refused = study.release()
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("no-confirmed-recipient")
