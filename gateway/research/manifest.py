"""The manifest of a release: what was released, under which conditions, with checksums.

The manifest is canonical JSON (sorted keys, two-space indent, UTF-8, trailing newline)
so its bytes are stable; ``manifest.sig`` is the raw 64-byte Ed25519 signature over
exactly those bytes. Numbers that are not counts (shares) are decimal strings, so no
float formatting can change a signed document.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.audit.events import format_time
from gateway.errors import IntegrityCheckFailed
from gateway.research.agreements import Linkage
from gateway.research.duo_checks import manifest_conditions
from gateway.research.extract import ExtractFiles, ExtractRequest
from gateway.research.transforms import TransformKind

FORMAT = "riec-gateway-extract/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
AGE_FORMAT = "age-encryption.org/v1"
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One data file of a release, before and after encryption."""

    name: str
    media_type: str
    size: int
    sha256: str
    encrypted_name: str
    encrypted_size: int
    encrypted_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest's description of this file."""
        return {
            "name": self.name,
            "media_type": self.media_type,
            "bytes": self.size,
            "sha256": self.sha256,
            "encrypted": {
                "name": self.encrypted_name,
                "format": AGE_FORMAT,
                "bytes": self.encrypted_size,
                "sha256": self.encrypted_sha256,
            },
        }


def _share(part: int, whole: int) -> str:
    return format(Decimal(part) / Decimal(whole), ".6f") if whole else "0.000000"


def _risk(extract: ExtractFiles) -> dict[str, Any]:
    """Return the risk and utility report of a release (empty if none was measured)."""
    risk = extract.risk
    if risk is None:
        return {}
    return {
        "people": risk.people,
        "prosecutor_risk_max": risk.prosecutor_max,
        "prosecutor_people_above_1_over_k": risk.prosecutor_people_above,
        "prosecutor_share_above_1_over_k": risk.share(risk.prosecutor_people_above),
        "event_attacker": {
            "known_events": risk.m,
            "risk_max": risk.event_max,
            "people_above_1_over_k": risk.event_people_above,
            "share_above_1_over_k": risk.share(risk.event_people_above),
        },
        "l_diversity": dict(sorted(risk.l_diversity.items())),
        "information_loss": risk.information_loss,
        "utility": {
            "generalisation_levels": dict(risk.levels),
            "generalisation_height": risk.information_loss,
            "discernibility": risk.discernibility,
            "average_class_size": risk.average_class_size,
        },
    }


def risk_summary(manifest: dict[str, Any]) -> str:
    """Return the person-level risk and utility report of a manifest as one line of text."""
    d = manifest.get("disclosure", {})
    risk = d.get("risk") or {}
    if not risk:
        return "no risk report in this manifest"
    event = risk["event_attacker"]
    diversity = ", ".join(f"{n}={v}" for n, v in risk["l_diversity"].items()) or "none declared"
    return (
        f"people: {d['people_out']} released, {d['people_suppressed']} suppressed "
        f"({d['rows_suppressed']} rows), {d['withdrawals_applied']} withdrawals applied; "
        f"prosecutor risk max {risk['prosecutor_risk_max']} (k={d['k']}); "
        f"attacker knowing {event['known_events']} event(s): risk max {event['risk_max']}, "
        f"{event['people_above_1_over_k']} people ({event['share_above_1_over_k']}) above 1/k; "
        f"l-diversity {diversity}; information loss {risk['information_loss']}"
        + _utility_summary(risk.get("utility"))
    )


def _utility_summary(utility: dict[str, Any] | None) -> str:
    if not utility:
        return ""
    levels = ", ".join(f"{n}={v}" for n, v in utility["generalisation_levels"].items())
    return (
        f"; levels {levels or 'none'}; discernibility {utility['discernibility']}; "
        f"average class size / k {utility['average_class_size']}"
    )


def build_manifest(
    request: ExtractRequest,
    extract: ExtractFiles,
    files: list[FileEntry],
    *,
    pseudonym_key_id: str,
    signer_fingerprint: str,
    signer_public_key: bytes | None = None,
) -> dict[str, Any]:
    """Return the manifest of a release as plain JSON-able data.

    With ``signer_public_key`` the signature section carries the raw public key (base64),
    so a researcher who holds only the agreement's pinned fingerprint can check it.
    """
    a, stats, check = request.agreement, extract.stats, extract.disclosure
    unlinked = a.disclosure.linkage is Linkage.UNLINKED
    conditions = manifest_conditions(a)
    return {
        "format": FORMAT,
        "release": {
            "id": request.release_id,
            "created_at": format_time(request.at),
            "expires_on": a.expiry(request.at).isoformat(),
            "policy_version": request.policy_version,
        },
        "agreement": {
            "id": a.id,
            "version": a.version,
            "title": a.title,
            "project": a.project,
            "sha256": a.sha256,
            "purpose": a.purpose,
            "legal_basis": a.legal_basis,
            "period": {"start": a.period.start.isoformat(), "end": a.period.end.isoformat()},
            "science_partners": [p.partner for p in a.science_partners],
            "prohibitions": [p.value for p in a.prohibitions],
            "publication_review": {
                "required": a.publication_review.required,
                "reviewers": list(a.publication_review.reviewers),
                "days": a.publication_review.days,
            },
            "dpia": {"reference": a.dpia.reference, "completed": a.dpia.completed.isoformat()},
            "retention_days": a.retention.extract_days,
        },
        "researchers": [
            {"name": r.name, "partner": r.partner, "recipient": r.recipient} for r in a.researchers
        ],
        "conditions": conditions,
        "providers": {
            "in_scope": sorted(a.provider_ids),
            "consenting": sorted(request.consenting_providers & a.provider_ids),
        },
        "counts": {
            "rows_in": stats.rows_in,
            "rows_selected": stats.rows_selected,
            "rows_suppressed": stats.rows_suppressed,
            "rows_out": stats.rows_out,
            "excluded": dict(sorted(stats.excluded.items())),
            "invalid_values": dict(sorted(stats.invalid_values.items())),
        },
        "disclosure": {
            "quasi_identifiers": list(a.disclosure.quasi_identifiers),
            "k": a.disclosure.k,
            "counts": (
                f"distinct {a.disclosure.count_distinct}" if a.disclosure.count_distinct else "rows"
            ),
            "max_suppressed_share": str(a.disclosure.max_suppressed_share),
            "suppressed_share": _share(stats.rows_suppressed, stats.rows_selected),
            "classes": check.classes,
            "classes_suppressed": check.small_count,
            "smallest_released_class": check.smallest_kept_class,
            "unit": "row" if unlinked else "person",
            "linkage": a.disclosure.linkage.value,
            "pseudonyms": "fresh per row and release" if unlinked else "one per person",
            "linked_through": [
                c.name for c in a.released_columns if c.transform.kind is TransformKind.PSEUDONYMISE
            ],
            "people_in": check.people,
            "people_suppressed": check.suppressed_people,
            "people_out": stats.people_out,
            "rows_suppressed": stats.rows_suppressed,
            "withdrawals_applied": stats.withdrawals_applied,
            "withdrawal_removes": a.withdrawal.removes.value,
            "people_redrawn": stats.people_redrawn,
            "values_merged": dict(sorted(stats.values_merged.items())),
            "row_order": "shuffled with a per-release random seed",
            "sensitive": list(a.disclosure.sensitive),
            "event_quasi_identifiers": list(a.disclosure.event_quasi_identifiers),
            "known_events": a.disclosure.known_events,
            "risk": _risk(extract),
        },
        "generalisation": {
            "levels": dict(check.levels),
            "state": extract.state.to_dict(),
            "state_sha256": extract.state.fingerprint,
        },
        "columns": [
            {
                "name": c.name,
                "source": list(c.source),
                "transform": str(c.transform),
                "type": "string",
            }
            for c in a.columns
        ],
        "pseudonymisation": {
            "algorithm": "HMAC-SHA256",
            "key_id": pseudonym_key_id,
            "computed": "on-intake" if request.pseudonymised else "at-release",
        },
        "signature": _signature_section(signer_fingerprint, signer_public_key),
        "files": [f.to_dict() for f in files],
    }


def _signature_section(fingerprint: str, public_key: bytes | None) -> dict[str, str]:
    """Return the manifest's signature section, with the public key when it is known."""
    section = {"algorithm": "Ed25519", "key_fingerprint": fingerprint}
    if public_key is not None:
        section["public_key"] = base64.b64encode(public_key).decode()
    return section


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Return the canonical bytes of ``manifest`` (what is signed and shipped)."""
    text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode()


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Return the manifest in ``data``; raise IntegrityCheckFailed unless it is well-formed.

    Checks the format, that it is canonical, and that every file entry has names,
    sizes and checksums of the right types.
    """
    try:
        manifest = json.loads(data.decode())
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("not a manifest of this format")
        if manifest_bytes(manifest) != data:
            raise ValueError("not canonical")
        files = manifest["files"]
        if not isinstance(files, list) or not files:
            raise ValueError("no files")
        for entry in files:
            enc = entry["encrypted"]
            for value in (entry["name"], entry["sha256"], enc["name"], enc["sha256"]):
                if not isinstance(value, str) or not value:
                    raise ValueError("bad file entry")
            if not isinstance(entry["bytes"], int) or not isinstance(enc["bytes"], int):
                raise ValueError("bad file size")
            if "/" in enc["name"] or "/" in entry["name"] or enc["name"].startswith("."):
                raise ValueError("bad file name")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise IntegrityCheckFailed() from exc
    return manifest


def member_names(manifest: dict[str, Any]) -> list[str]:
    """Return the bundle's member names, in order, as the manifest prescribes them."""
    return [MANIFEST_NAME, SIGNATURE_NAME, *(f["encrypted"]["name"] for f in manifest["files"])]
