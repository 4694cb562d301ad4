"""The consents page: each provider's state per agreement; an officer decides for its partner."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.workbench.test_web import Browser, browser, csrf_of, signed_in  # noqa: F401

AGREEMENT = "jeugdnetwerken-noord-nederland"
POLITIE_PO = "politie-noord-nederland.privacy-officer"
RIEC_PO = "riec-noord-nederland.privacy-officer"
BELASTING_PO = "belastingdienst.privacy-officer"


def test_an_officer_records_and_revokes_its_partners_consent(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[POLITIE_PO])
    page = client.get("/workbench/consents")
    assert page.status_code == 200
    assert f'id="consent-{AGREEMENT}-politie-noord-nederland"' in page.text
    token = csrf_of(page.text)
    done = client.post(
        f"/workbench/consents/{AGREEMENT}",
        data={"decision": "consent", "note": "Getoetst aan Wpg art. 22", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = client.get("/workbench/consents").text
    row = after.split(f'id="consent-{AGREEMENT}-politie-noord-nederland"')[1].split("</tr>")[0]
    assert "consented" in row and "Getoetst aan Wpg art. 22" in row
    api = gateway.client.get(
        f"/v1/research/agreements/{AGREEMENT}/consents", headers=gateway.auth(RIEC_PO)
    ).json()
    assert {p["provider"]: p["state"] for p in api["providers"]}["politie-noord-nederland"] == (
        "consented"
    )
    client.post(
        f"/workbench/consents/{AGREEMENT}",
        data={"decision": "revoke", "csrf_token": token},
        follow_redirects=False,
    )
    assert "revoked" in client.get("/workbench/consents").text


def test_a_partner_not_named_sees_no_states_and_cannot_decide(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[BELASTING_PO])
    page = client.get("/workbench/consents")
    assert "wordt in deze overeenkomst niet genoemd" in page.text
    refused = client.post(
        f"/workbench/consents/{AGREEMENT}",
        data={"decision": "consent", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_a_forged_post_without_csrf_token_is_refused(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    client = signed_in(browser, gateway.tokens[POLITIE_PO])
    refused = client.post(
        f"/workbench/consents/{AGREEMENT}", data={"decision": "consent"}, follow_redirects=False
    )
    assert refused.status_code == 403
