"""The witness's folder: its config (name, witnessed logs), its private key, its state.

``witness.json`` names the witness and lists each log it witnesses (origin and the log's
verifier keys); ``witness.key`` is the base64 of the raw Ed25519 private key (mode
0600); ``state.json`` holds, per origin, the latest cosigned checkpoint. Files are
written aside and renamed into place (fsynced), so a crash leaves the old or the new
state, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.audit.cosignature import CosignerKey
from gateway.audit.note import NoteError, NoteVerifier, check_key_name
from gateway.errors import InvalidInputError
from gateway.keys import files
from gateway.keys.errors import KeyRingError
from gateway.keys.signing import Ed25519Signer

CONFIG_NAME = "witness.json"
KEY_NAME = "witness.key"
STATE_NAME = "state.json"


@dataclass(frozen=True, slots=True)
class WitnessedLog:
    """A log this witness cosigns: its origin and the keys its checkpoints are signed with."""

    origin: str
    keys: tuple[NoteVerifier, ...]


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """The witness's name (its cosignatures' key name) and the logs it witnesses, by origin."""

    name: str
    logs: dict[str, WitnessedLog]


@dataclass(frozen=True, slots=True)
class LogState:
    """The latest checkpoint cosigned for one log: size, root and the cosigned note."""

    size: int
    root: bytes
    note: str


def parse_log_spec(spec: str) -> NoteVerifier:
    """Return the log verifier key of a ``--log`` value (a note verifier key string).

    The key's name is the log's origin. Raises InvalidInputError if it is not one.
    """
    return NoteVerifier.from_vkey(spec)


def init_witness(folder: Path, name: str, logs: list[NoteVerifier]) -> CosignerKey:
    """Create the witness folder: a new key and the config; return the witness's public key.

    Raises InvalidInputError if the folder already holds a witness, the name cannot name
    a note key, or no log is given.
    """
    try:
        check_key_name(name)
    except NoteError as exc:
        raise InvalidInputError(
            "the witness name must be non-empty, without spaces or '+'"
        ) from exc
    if not logs:
        raise InvalidInputError("give at least one log to witness (--log <verifier key>)")
    files.ensure_private_dir(folder, folder)
    by_origin: dict[str, list[str]] = {}
    for key in logs:
        by_origin.setdefault(key.name, []).append(key.vkey())
    signer = Ed25519Signer.generate()
    if not files.write_new(folder / KEY_NAME, base64.b64encode(signer.private_bytes()) + b"\n"):
        raise InvalidInputError(f"{folder} already holds a witness key; not replacing it")
    config = {"name": name, "logs": [{"origin": o, "keys": k} for o, k in by_origin.items()]}
    files.replace(folder / CONFIG_NAME, json.dumps(config, indent=2).encode() + b"\n")
    save_state(folder, {})
    return CosignerKey(name, signer.public_key)


def add_log_keys(folder: Path, logs: list[NoteVerifier]) -> WitnessConfig:
    """Trust more log keys (a new log, or a log's rotated key); return the new config.

    The witness's state for a log is kept: a new key continues the same log. Raises
    InvalidInputError if the folder holds no witness.
    """
    config = load_config(folder)
    by_origin = {o: [k.vkey() for k in log.keys] for o, log in config.logs.items()}
    for key in logs:
        keys = by_origin.setdefault(key.name, [])
        if key.vkey() not in keys:
            keys.append(key.vkey())
    raw = {"name": config.name, "logs": [{"origin": o, "keys": k} for o, k in by_origin.items()]}
    files.replace(folder / CONFIG_NAME, json.dumps(raw, indent=2).encode() + b"\n")
    return load_config(folder)


def load_config(folder: Path) -> WitnessConfig:
    """Return the witness config of ``folder``; raise InvalidInputError if missing or bad."""
    try:
        raw = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        logs: dict[str, WitnessedLog] = {}
        for item in raw["logs"]:
            keys = tuple(NoteVerifier.from_vkey(k) for k in item["keys"])
            if not keys or any(k.name != item["origin"] for k in keys):
                raise ValueError("each log key must be named by its origin")
            logs[item["origin"]] = WitnessedLog(item["origin"], keys)
        name = check_key_name(raw["name"])
    except FileNotFoundError as exc:
        raise InvalidInputError(f"no witness in {folder}; run `gateway witness init`") from exc
    except (ValueError, KeyError, TypeError, InvalidInputError) as exc:
        raise InvalidInputError(f"the witness config {folder / CONFIG_NAME} is not valid") from exc
    return WitnessConfig(name=name, logs=logs)


def load_signer(folder: Path) -> Ed25519Signer:
    """Return the witness's private key; raise KeyRingError if missing, loose or damaged."""
    found = files.read_private(folder / KEY_NAME, folder)
    if found is None:
        raise KeyRingError(f"no witness key in {folder}; run `gateway witness init`")
    try:
        raw = base64.b64decode(found[0].strip(), validate=True)
    except binascii.Error as exc:
        raise KeyRingError(f"the witness key in {folder} is damaged") from exc
    return Ed25519Signer.from_private_bytes(raw)


def load_state(folder: Path) -> dict[str, LogState]:
    """Return the latest cosigned checkpoint per origin (empty before the first cosignature).

    Raises InvalidInputError if the state file is missing or damaged: a witness that
    lost its state must not silently start over (it would cosign a rolled-back log).
    """
    path = folder / STATE_NAME
    if not path.exists():
        raise InvalidInputError(
            f"the witness state {path} is missing; restore it, or re-initialise the witness "
            "with a new key (logs must then trust the new key)"
        )
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return {
            origin: LogState(
                size=int(item["size"]),
                root=base64.b64decode(item["root"], validate=True),
                note=str(item["note"]),
            )
            for origin, item in raw["logs"].items()
        }
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInputError(f"the witness state {path} is damaged") from exc


def save_state(folder: Path, state: dict[str, LogState]) -> None:
    """Atomically replace the state file with ``state``."""
    doc = {
        "logs": {
            origin: {
                "size": s.size,
                "root": base64.b64encode(s.root).decode("ascii"),
                "note": s.note,
            }
            for origin, s in sorted(state.items())
        }
    }
    files.replace(folder / STATE_NAME, json.dumps(doc, indent=2).encode() + b"\n")
