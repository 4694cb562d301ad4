"""docker-compose.yml and the Dockerfile describe the production shape (checked, not run)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gateway.config import setting_env_names

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def gateway_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items() if name.startswith("gateway")}


def test_every_gateway_variable_is_a_real_setting() -> None:
    known = setting_env_names()
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "Dockerfile").read_text()
    used = set(re.findall(r"\bGATEWAY_[A-Z_]+\b", text))
    assert used, "compose sets no GATEWAY_ variables"
    assert used <= known, f"not settings: {sorted(used - known)}"


def test_postgres_has_volume_and_healthcheck() -> None:
    pg = compose()["services"]["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])


def test_two_gateway_replicas_in_production_mode_on_postgres() -> None:
    services = gateway_services(compose())
    assert len(services) >= 2
    for svc in services.values():
        env = svc["environment"]
        assert env["GATEWAY_MODE"] == "production"
        assert env["GATEWAY_DATABASE_URL"].startswith("postgresql")
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        mounts = {v.split(":")[1] for v in svc["volumes"]}
        assert {env["GATEWAY_KEYS_DIR"], env["GATEWAY_DATA_DIR"]} <= mounts


def test_secrets_come_from_the_environment_not_the_file() -> None:
    for svc in gateway_services(compose()).values():
        env = svc["environment"]
        for name in ("GATEWAY_MASTER_KEY", "GATEWAY_SESSION_SECRET"):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[name]), (
                f"{name} is not taken from the environment"
            )


def test_dockerfile_runs_as_non_root_with_volumes() -> None:
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "VOLUME" in text and "/var/lib/gateway-keys" in text
    assert "GATEWAY_MODE=production" in text


def test_only_a_tls_proxy_is_published_and_the_replicas_are_not() -> None:
    services = compose()["services"]
    for name, svc in gateway_services(compose()).items():
        assert "ports" not in svc, f"{name} is reachable around the TLS proxy"
    proxy = services["proxy"]
    assert proxy["ports"] == ["443:443"]
    assert any(v.startswith("./deploy/Caddyfile:") for v in proxy["volumes"])
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "tls " in caddyfile
    upstreams = re.search(r"reverse_proxy (.+) \{", caddyfile)
    assert upstreams is not None
    assert set(upstreams.group(1).split()) == {f"{n}:8080" for n in gateway_services(compose())}


def test_the_migrate_command_is_written_the_same_in_compose_and_readme() -> None:
    command = "docker compose --profile migrate run --rm migrate"
    assert command in (ROOT / "docker-compose.yml").read_text()
    assert command in (ROOT / "README.md").read_text()


def test_the_image_context_leaves_secrets_and_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {"keys", "data", ".env", ".git", ".venv"} <= ignored


def test_setuptools_is_new_enough_for_the_spdx_license_string() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "[A-Z0-9.-]+"$', text, re.MULTILINE)
    bound = re.search(r'"setuptools>=(\d+)', text)
    assert bound is not None and int(bound.group(1)) >= 77


def test_one_witness_runs_apart_from_the_gateway_with_its_own_state() -> None:
    doc = compose()
    witness = doc["services"]["witness"]
    assert witness["command"][:3] == ["gateway", "witness", "serve"]
    assert "--dir" in witness["command"]
    state = witness["command"][witness["command"].index("--dir") + 1]
    assert any(v.endswith(":" + state) for v in witness["volumes"])
    gateway_volumes = {v for svc in gateway_services(doc).values() for v in svc["volumes"]}
    assert not set(witness["volumes"]) & gateway_volumes  # no access to keys or data
    assert not any(k.startswith("GATEWAY_") for k in witness.get("environment", {}))
    assert "postgres" not in witness.get("depends_on", {})
    assert witness["user"] not in {"root", "0", "0:0"}
    assert "/healthz" in " ".join(witness["healthcheck"]["test"])
    for svc in gateway_services(doc).values():
        assert "GATEWAY_WITNESSES" in svc["environment"]
