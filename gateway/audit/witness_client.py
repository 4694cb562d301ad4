"""The HTTP client of one C2SP tlog-witness: ``add-checkpoint`` and its latest cosigned note.

Short timeouts: a witness that is down must not stall the log. Answers are verified
here (a cosignature that does not verify is an integrity failure).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from gateway.audit.cosignature import Cosignature, CosignerKey, cosignatures
from gateway.errors import IntegrityCheckFailed, InvalidInputError

SIZE_MEDIA_TYPE = "text/x.tlog.size"


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness the log asks: its URL prefix and its cosigner key."""

    url: str
    key: CosignerKey


def parse_witness(value: str) -> WitnessEndpoint:
    """Parse ``"<url> <witness verifier key>"``; raise InvalidInputError if malformed."""
    url, _, vkey = value.strip().partition(" ")
    if not url.startswith(("http://", "https://")) or not vkey.strip():
        raise InvalidInputError("a witness is '<http(s) URL> <name+id+base64 key>'")
    return WitnessEndpoint(url.rstrip("/"), CosignerKey.from_vkey(vkey))


class WitnessConflict(Exception):
    """The witness last cosigned another size (409 with ``text/x.tlog.size``)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness is at size {size}")
        self.size = size


class WitnessRejected(Exception):
    """The witness refused to cosign (bad proof, unknown log, bad signature, same size fork)."""


class WitnessUnavailable(Exception):
    """The witness could not be reached or answered something that is not the protocol."""


class WitnessClient:
    """HTTP client of one witness (short timeouts: a witness down must not stall the log)."""

    def __init__(
        self,
        endpoint: WitnessEndpoint,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def add_checkpoint(self, old: int, proof: Sequence[bytes], note: str) -> Cosignature:
        """Submit ``note`` with a consistency proof from ``old``; return the verified cosignature.

        Raises WitnessConflict (with the witness's size), WitnessRejected or
        WitnessUnavailable; IntegrityCheckFailed if its answer does not verify.
        """
        body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        try:
            response = self._http.post(
                f"{self.endpoint.url}/add-checkpoint", content=(body + "\n" + note).encode()
            )
        except httpx.HTTPError as exc:
            raise WitnessUnavailable(f"witness {self.endpoint.key.name} unreachable") from exc
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(
            SIZE_MEDIA_TYPE
        ):
            try:
                return_size = int(response.text.strip())
            except ValueError as exc:
                raise WitnessUnavailable("malformed size in a 409 answer") from exc
            raise WitnessConflict(return_size)
        if response.status_code in (400, 403, 404, 409, 422):
            raise WitnessRejected(f"witness answered {response.status_code}")
        if response.status_code != 200:
            raise WitnessUnavailable(f"witness answered {response.status_code}")
        found = cosignatures(note + response.text, [self.endpoint.key])
        if not found:
            raise IntegrityCheckFailed() from WitnessRejected("no cosignature by the witness")
        return found[0]

    def latest(self, origin: str) -> str | None:
        """Return the witness's latest cosigned checkpoint note of ``origin``, None if none.

        Raises WitnessUnavailable if the witness cannot be asked.
        """
        try:
            response = self._http.get(f"{self.endpoint.url}/checkpoints/{quote(origin, safe='/')}")
        except httpx.HTTPError as exc:
            raise WitnessUnavailable(f"witness {self.endpoint.key.name} unreachable") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise WitnessUnavailable(f"witness answered {response.status_code}")
        return response.text
