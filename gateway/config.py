"""Settings from the environment (prefix ``GATEWAY_``); unsafe values are refused here.

In production mode the gateway refuses to start with the development secrets, with an
in-memory SQLite database, without a master key, or without naming its operating RIEC
(``GATEWAY_OPERATING_PARTNER``). Secrets stay wrapped in
``SecretStr`` until the moment they are used.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Well-known development secrets. They are public (they are in this file), so
# production mode refuses them. The master key is base64 of exactly 32 bytes.
DEV_MASTER_KEY = "ZGV2ZWxvcG1lbnQtb25seS1tYXN0ZXIta2V5LTMyYnk="
DEV_SESSION_SECRET = "development-only-session-secret-do-not-use"  # noqa: S105
DEV_LOG_ORIGIN = "riec-gateway.localhost/audit"
DEV_OPERATING_PARTNER = "riec-noord-nederland"
"""The demo's RIEC: the operating partner in development when none is set."""
_PARTNER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")


class Mode(StrEnum):
    """How strict start-up is: development allows demo data and well-known secrets."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


AuditIntegration = Literal["inline", "background"]


class UnsafeSettingsError(ValueError):
    """The settings would run the gateway in an unsafe way; the message says why."""


class Settings(BaseSettings):
    """All runtime configuration. Build with ``Settings()`` to read the environment."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    mode: Mode = Mode.DEVELOPMENT
    data_dir: Path = Field(default=Path("data"), description="Folder for the SQLite file")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in data_dir"
    )
    keys_dir: Path = Field(default=Path("keys"), description="Key ring folder")
    policies_dir: Path = Field(default=Path("policies"), description="Policy pack folder")
    bind: str = Field(default="127.0.0.1:8080", description="host:port to listen on")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    master_key: SecretStr | None = Field(
        default=None, description="base64 key-encryption key (32 bytes)"
    )
    master_passphrase: SecretStr | None = Field(
        default=None, description="passphrase from which the key-encryption key is derived"
    )
    session_secret: SecretStr = Field(
        default=SecretStr(DEV_SESSION_SECRET), description="signs workbench session cookies"
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="request body limit")
    token_ttl_days: int = Field(default=90, ge=1, le=730, description="bearer token lifetime")
    case_retention_days: int = Field(
        default=365,
        ge=1,
        le=7300,
        description="how long a closed case's documents and key outlive its last record",
    )
    log_level: str = Field(default="INFO", description="stdlib logging level name")
    policy_poll_seconds: float = Field(
        default=0.5, gt=0, le=10, description="how often workers look for a new active policy"
    )
    releases_dir: Path | None = Field(
        default=None, description="folder of research release bundles; default <data_dir>/releases"
    )
    log_origin: str = Field(
        default=DEV_LOG_ORIGIN,
        max_length=200,
        description="origin line of the audit log's signed checkpoints (and its key name)",
    )
    witnesses: list[str] = Field(
        default_factory=list,
        description='witnesses of the audit log, a JSON list of "<URL> <witness verifier key>"',
    )
    witness_quorum: int | None = Field(
        default=None, ge=1, description="cosignatures that make a checkpoint witnessed; default all"
    )
    witness_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="how long to wait for one witness"
    )
    workbench_idle_minutes: int = Field(
        default=30, ge=1, le=240, description="workbench sessions end after this much inactivity"
    )
    workbench_session_hours: int = Field(
        default=8, ge=1, le=24, description="workbench sessions end this long after sign-in"
    )
    operating_partner: str | None = Field(
        default=None,
        description="id of the RIEC that runs this gateway; required in production",
    )
    audit_integration: AuditIntegration = Field(
        default="inline",
        description="inline: a request integrates its audit entries right after its commit; "
        "background: one elected integrator per database does (see gateway.audit.sequencer)",
    )
    enrolment_ttl_hours: int = Field(
        default=72, ge=1, le=720, description="how long a one-time enrolment code can be redeemed"
    )
    oidc_session_minutes: int = Field(
        default=60,
        ge=5,
        le=480,
        description="workbench sessions opened through a partner's identity provider end this "
        "long after sign-in, so a person disabled there is out at the next sign-in",
    )
    public_url: str | None = Field(
        default=None,
        max_length=200,
        description="the gateway's external https URL (identity provider redirects come back "
        "here); default: the URL each request arrived at",
    )

    logboek_export: bool = Field(
        default=True,
        description="run the exporter that sends partners' Logboek lines (OTLP) in the serving "
        "process; `gateway logboek flush` sends them by hand",
    )
    logboek_batch: int = Field(default=500, ge=1, le=5000, description="Logboek lines per request")
    logboek_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="how long to wait for a Logboek to acknowledge"
    )
    logboek_retry_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="first wait after a Logboek failed; it doubles"
    )
    logboek_retry_max_seconds: float = Field(
        default=300.0, gt=0, le=86400, description="longest wait between attempts at a Logboek"
    )
    logboek_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="how often the exporter looks for queued lines"
    )

    @field_validator("bind")
    @classmethod
    def _bind_has_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("bind must look like host:port, e.g. 127.0.0.1:8080")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return upper

    @field_validator("log_origin")
    @classmethod
    def _origin_is_a_note_key_name(cls, value: str) -> str:
        # C2SP tlog-checkpoint: the origin is also the signed-note key name.
        if not value or any(c.isspace() or c == "+" or ord(c) < 0x20 for c in value):
            raise ValueError(
                "log_origin must be non-empty without spaces or '+', e.g. example.org/audit"
            )
        return value

    @field_validator("operating_partner")
    @classmethod
    def _operating_partner_is_an_id(cls, value: str | None) -> str | None:
        if value is not None and not _PARTNER_ID_RE.fullmatch(value):
            raise ValueError(
                "operating_partner must be a partner id (3-64 lowercase letters, digits or "
                "hyphens), e.g. riec-noord-nederland"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_a_base(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                "public_url must be an http(s) URL without query, e.g. https://gw.example"
            )
        return None if value is None else value.rstrip("/")

    @field_validator("witnesses")
    @classmethod
    def _witnesses_parse(cls, value: list[str]) -> list[str]:
        from gateway.audit.witness_client import parse_witness  # the key format lives there
        from gateway.errors import InvalidInputError

        keys = set()
        for item in value:
            try:
                keys.add(parse_witness(item).key.key_id)
            except InvalidInputError as exc:
                raise ValueError(exc.detail) from exc
        if len(keys) != len(value):
            raise ValueError("each witness must be listed once, with its own key")
        return value

    @model_validator(mode="after")
    def _quorum_reachable(self) -> Settings:
        if self.witness_quorum is not None and self.witness_quorum > len(self.witnesses):
            raise ValueError("witness_quorum cannot exceed the number of witnesses")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.mode is not Mode.PRODUCTION:
            return self
        problems: list[str] = []
        url = self.resolved_database_url
        if url.startswith("sqlite") and (
            ":memory:" in url or "mode=memory" in url or url in {"sqlite://", "sqlite:///"}
        ):
            problems.append(
                "GATEWAY_DATABASE_URL is an in-memory SQLite database, "
                "which loses everything on exit"
            )
        if self.master_key is None and self.master_passphrase is None:
            problems.append("set GATEWAY_MASTER_KEY or GATEWAY_MASTER_PASSPHRASE")
        if self.master_key is not None and self.master_key.get_secret_value() == DEV_MASTER_KEY:
            problems.append("GATEWAY_MASTER_KEY is the public development key")
        if self.session_secret.get_secret_value() == DEV_SESSION_SECRET:
            problems.append("GATEWAY_SESSION_SECRET is the public development secret")
        elif len(self.session_secret.get_secret_value()) < 32:
            problems.append("GATEWAY_SESSION_SECRET must be at least 32 characters")
        if self.operating_partner is None:
            problems.append(
                "set GATEWAY_OPERATING_PARTNER to the partner id of the RIEC that runs this "
                "gateway (its operators alone register partners and enrol their first principal)"
            )
        if self.public_url is not None and not self.public_url.startswith("https://"):
            problems.append("GATEWAY_PUBLIC_URL must be an https URL")
        if problems:
            raise UnsafeSettingsError("refusing production mode: " + "; ".join(problems))
        return self

    @property
    def resolved_operating_partner(self) -> str:
        """The operating RIEC's partner id: ``operating_partner``, else the demo's RIEC.

        Production mode refuses to start without ``operating_partner``, so the demo
        default only ever applies in development.
        """
        return self.operating_partner or DEV_OPERATING_PARTNER

    @property
    def host(self) -> str:
        """The host part of ``bind``."""
        return self.bind.rpartition(":")[0]

    @property
    def port(self) -> int:
        """The port part of ``bind``."""
        return int(self.bind.rpartition(":")[2])

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/gateway.db`` (absolute)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def resolved_releases_dir(self) -> Path:
        """The folder of research bundles: ``releases_dir``, else ``<data_dir>/releases``."""
        return self.releases_dir if self.releases_dir is not None else self.data_dir / "releases"

    def effective_master_key(self) -> SecretStr | None:
        """The configured master key, or the development key when nothing is set in development."""
        if self.master_key is not None or self.master_passphrase is not None:
            return self.master_key
        if self.mode is Mode.DEVELOPMENT:
            return SecretStr(DEV_MASTER_KEY)
        return None


def setting_env_names() -> set[str]:
    """Return every ``GATEWAY_*`` environment variable name that Settings reads."""
    return {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}
