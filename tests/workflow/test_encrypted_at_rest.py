"""A record shared through the API leaves no BSN or name in the raw database bytes.

The scan reads the SQLite file (and its write-ahead log) or every PostgreSQL relation
file of the schema, and checks itself against plaintext that must be there.
"""

from __future__ import annotations

from gateway.demo import POLITIE
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.rawbytes import raw_database_bytes

BSN = "123456782"
NAME = "Jantje Zwartbroek"


def test_a_shared_bsn_and_name_are_not_in_the_raw_database(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    record = {
        **POLICE_RECORD,
        "fields": {**POLICE_RECORD["fields"], "subject_bsn": BSN, "subject_name": NAME},
        "summary": f"Samenvatting over {NAME}",
    }
    assert walk.share(POLITIE, record).status_code == 201
    assert (
        walk.by_category("riec-noord-nederland.riec-analyst")["police-incident"]["fields"][
            "subject_bsn"
        ]
        == BSN
    )
    raw = raw_database_bytes(gateway.database)
    # the scan sees plaintext where there is plaintext: ids and codes are not secret
    assert walk.case_id.encode() in raw and b"police-incident" in raw
    for secret in (BSN, NAME, NAME.lower(), "Jesse de Vries", "jesse de vries"):
        assert secret.encode() not in raw, f"{secret!r} found in the raw database bytes"
        assert secret.encode("utf-16-le") not in raw
