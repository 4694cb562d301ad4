"""The witness's one use case, C2SP tlog-witness ``add-checkpoint``, and its read side.

The request body is ``old <size>``, at most 63 base64 consistency-proof lines, a blank
line and the log's signed checkpoint. The witness checks, in the order the spec gives
statuses for: a well-formed body (400), a known origin (404), a valid log signature
(403), ``old`` not above the new size (400), ``old`` equal to the size it last cosigned
(409, answering that size), the consistency proof (422), and equal roots when the size
did not change (409). Only then does it persist the new checkpoint and cosign it. The
check and the write happen under one lock, so two concurrent requests cannot roll the
stored size back.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from gateway.audit.cosignature import CosignerKey, cosign, split_note, with_cosignatures
from gateway.audit.merkle import HASH_SIZE, ProofError, verify_consistency
from gateway.audit.note import NoteError, open_note, parse_checkpoint
from gateway.clock import Clock
from gateway.keys.errors import IntegrityCheckFailedError
from gateway.witness import store

MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]*)")


class Status(IntEnum):
    """The HTTP statuses tlog-witness assigns to each refusal."""

    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409
    UNPROCESSABLE = 422


class WitnessRefused(Exception):
    """The witness will not cosign; ``status`` is the spec's HTTP status for the reason.

    ``size`` is set for a 409 on a wrong old size: the size the witness last cosigned.
    """

    def __init__(self, status: Status, reason: str, size: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.size = size


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed add-checkpoint request body."""

    old: int
    proof: tuple[bytes, ...]
    note: str


def parse_request(body: bytes) -> AddCheckpoint:
    """Split an add-checkpoint body into its parts; raise WitnessRefused(400) if malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessRefused(Status.BAD_REQUEST, "the body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    match = _OLD.fullmatch(lines[0])
    if not sep or match is None:
        raise WitnessRefused(Status.BAD_REQUEST, "the body must start with 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefused(Status.BAD_REQUEST, "too many consistency proof lines")
    try:
        proof = tuple(base64.b64decode(line, validate=True) for line in lines[1:])
    except binascii.Error as exc:
        raise WitnessRefused(Status.BAD_REQUEST, "a proof line is not base64") from exc
    if any(len(h) != HASH_SIZE for h in proof):
        raise WitnessRefused(Status.BAD_REQUEST, "proof hashes have 32 bytes")
    return AddCheckpoint(old=int(match.group(1)), proof=proof, note=note)


class Witness:
    """A running witness: its config, key, clock and state folder."""

    def __init__(self, folder: Path, clock: Clock) -> None:
        self.folder = folder
        self.config = store.load_config(folder)
        self._signer = store.load_signer(folder)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = store.load_state(folder)

    @property
    def key(self) -> CosignerKey:
        """The witness's public cosigner key (give its ``vkey()`` to the logs and verifiers)."""
        return CosignerKey(self.config.name, self._signer.public_key)

    def add_checkpoint(self, body: bytes) -> str:
        """Check and cosign a submitted checkpoint; return the cosignature line.

        Raises WitnessRefused with the spec's status if it must not be cosigned.
        """
        request = parse_request(body)
        text = self._open(request.note)
        checkpoint = parse_checkpoint(text)
        if request.old > checkpoint.size:
            raise WitnessRefused(Status.BAD_REQUEST, "old size above the checkpoint's size")
        with self._lock:
            latest = self._state.get(checkpoint.origin)
            known = latest.size if latest is not None else 0
            if request.old != known:
                raise WitnessRefused(Status.CONFLICT, "old size is not the cosigned size", known)
            if latest is None or request.old == 0:
                if request.proof:
                    raise WitnessRefused(Status.UNPROCESSABLE, "a proof from size 0 is empty")
            else:
                try:
                    verify_consistency(
                        latest.size, checkpoint.size, latest.root, checkpoint.root, request.proof
                    )
                except ProofError as exc:
                    if latest.size == checkpoint.size and not request.proof:
                        raise WitnessRefused(Status.CONFLICT, "same size, different root") from exc
                    raise WitnessRefused(
                        Status.UNPROCESSABLE, "the consistency proof does not verify"
                    ) from exc
            timestamp = int(self._clock.now().timestamp())
            line = cosign(text, self.config.name, self._signer, timestamp)
            log_signed = text + "\n" + "".join(s + "\n" for s in self._log_lines(request.note))
            state = dict(self._state)
            state[checkpoint.origin] = store.LogState(
                size=checkpoint.size,
                root=checkpoint.root,
                note=with_cosignatures(log_signed, [line]),
            )
            store.save_state(self.folder, state)  # persisted before anyone sees the line
            self._state = state
        return line

    def latest(self, origin: str) -> str | None:
        """Return the latest checkpoint cosigned for ``origin`` (with its cosignature), if any."""
        with self._lock:
            found = self._state.get(origin)
        return None if found is None else found.note

    def _open(self, note: str) -> str:
        """Return the note's checkpoint text once a trusted key of its origin signed it."""
        origin = note.split("\n", 1)[0]
        log = self.config.logs.get(origin)
        if log is None:
            raise WitnessRefused(Status.NOT_FOUND, "unknown log origin")
        try:
            text = open_note(note, log.keys)
        except IntegrityCheckFailedError as exc:
            raise WitnessRefused(Status.FORBIDDEN, "no valid signature by the log") from exc
        try:
            parse_checkpoint(text)
        except NoteError as exc:
            raise WitnessRefused(Status.BAD_REQUEST, "not a checkpoint") from exc
        return text

    def _log_lines(self, note: str) -> list[str]:
        """Return the note's signature lines that a key of its log made (not other witnesses)."""
        _text, lines = split_note(note)
        origin = note.split("\n", 1)[0]
        ids = {k.key_id for k in self.config.logs[origin].keys}
        out = []
        for line in lines:
            parts = line.split(" ")
            if len(parts) == 3 and parts[1] == origin:
                try:
                    raw = base64.b64decode(parts[2], validate=True)
                except binascii.Error:
                    continue
                if raw[:4] in ids:
                    out.append(line)
        return out
