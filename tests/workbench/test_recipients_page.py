"""The researchers' keys page: a science partner's privacy officer confirms pending keys."""

from __future__ import annotations

from pyrage import x25519

from tests.conftest import Gateway
from tests.workbench.test_web import Browser, browser, csrf_of, signed_in  # noqa: F401

AGREEMENT = "jeugdnetwerken-noord-nederland"
NSCR = "nscr.researcher"
NSCR_PO = "nscr.privacy-officer"
POLITIE_PO = "politie-noord-nederland.privacy-officer"
RECIPIENTS = f"/v1/research/agreements/{AGREEMENT}/recipients"


def registered(gateway: Gateway) -> dict[str, str]:
    """Register a fresh key as the NSCR researcher; return the API's answer."""
    key = str(x25519.Identity.generate().to_public())
    response = gateway.client.post(RECIPIENTS, json={"recipient": key}, headers=gateway.auth(NSCR))
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def test_the_science_partners_officer_sees_and_confirms_a_pending_key(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    pending = registered(gateway)
    client = signed_in(browser, gateway.tokens[NSCR_PO])
    page = client.get("/workbench/recipients")
    assert page.status_code == 200
    row = page.text.split(f'id="recipient-{pending["id"]}"')[1].split("</tr>")[0]
    assert "pending" in row and NSCR in row and pending["recipient"] in row
    done = client.post(
        f"/workbench/recipients/{AGREEMENT}/{pending['id']}/confirm",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = client.get("/workbench/recipients").text
    row = after.split(f'id="recipient-{pending["id"]}"')[1].split("</tr>")[0]
    assert "confirmed" in row and NSCR_PO in row
    listed = gateway.client.get(RECIPIENTS, headers=gateway.auth(NSCR)).json()
    assert listed[0]["status"] == "confirmed" and listed[0]["confirmed_by"] == NSCR_PO


def test_an_officer_of_another_partner_sees_no_keys_and_cannot_confirm(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    pending = registered(gateway)
    client = signed_in(browser, gateway.tokens[POLITIE_PO])
    page = client.get("/workbench/recipients")
    assert page.status_code == 200 and pending["recipient"] not in page.text
    refused = client.post(
        f"/workbench/recipients/{AGREEMENT}/{pending['id']}/confirm",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_a_forged_confirm_without_csrf_token_is_refused(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    pending = registered(gateway)
    client = signed_in(browser, gateway.tokens[NSCR_PO])
    refused = client.post(
        f"/workbench/recipients/{AGREEMENT}/{pending['id']}/confirm", follow_redirects=False
    )
    assert refused.status_code == 403
