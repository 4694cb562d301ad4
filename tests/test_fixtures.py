"""The suite's shared fixtures give what they replace: the same documents, policies and rows.

``tests/conftest.py`` reuses an OpenAPI document across apps with the same routes and a
policy compiled earlier from the same pack; these tests hold both to a fresh build.
"""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.policy.compiler import compile_policy
from gateway.yamlsource import SourceError
from tests.conftest import POLICIES, Gateway, _route_key, forget_endpoints
from tests.helpers.compiled import compiler_once

RULE_FILE = "rules/40-onderzoek.yaml"


def _other(settings: Settings, tmp_path: Path) -> Settings:
    """Settings as far from the standard ones as the suite's fixtures go."""
    policies = tmp_path / "other-pack"
    shutil.copytree(POLICIES, policies)
    return Settings(
        **{
            **settings.model_dump(),
            "policies_dir": policies,
            "releases_dir": tmp_path / "other-releases",
            "max_body_bytes": 1_048_576,
            "token_ttl_days": 3,
        }
    )


def test_the_openapi_document_depends_on_the_routes_not_on_the_settings(
    settings: Settings, database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    standard = create_app(settings, clock=clock, db=database)
    other = create_app(_other(settings, tmp_path), clock=clock, db=database)
    assert _route_key(standard) == _route_key(other)
    assert standard.openapi() == other.openapi()

    extra = APIRouter()

    @extra.get("/v1/extra")
    def extra_route() -> dict[str, str]:
        return {}

    other.include_router(extra)
    assert _route_key(standard) != _route_key(other)


def test_a_pack_compiled_once_is_the_pack_compiled_again(tmp_path: Path) -> None:
    compile_once = compiler_once()
    first = compile_once(POLICIES)
    assert first == compile_policy(POLICIES)
    assert compile_once(POLICIES) is first

    copy = tmp_path / "pack"
    shutil.copytree(POLICIES, copy)
    assert compile_once(copy) == compile_policy(copy)  # its own folder: its own compilation
    rules = copy / RULE_FILE
    rules.write_text(
        rules.read_text("utf-8").replace("reason: >-", "reason: >-\n      Edited.", 1), "utf-8"
    )
    edited = compile_once(copy)
    assert edited == compile_policy(copy)
    assert edited.version != first.version

    rules.write_text("rules: [broken\n", "utf-8")
    for _ in range(2):  # a broken pack is never remembered: it fails every time
        with pytest.raises(SourceError):
            compile_once(copy)


class TestAGatewayOnACopiedPack:
    """The research fixtures run the gateway on a copy of the pack, as here."""

    @pytest.fixture
    def settings(self, settings: Settings, tmp_path: Path) -> Settings:
        """The standard settings with a copy of the shipped pack."""
        policies = tmp_path / "copied-pack"
        shutil.copytree(POLICIES, policies)
        return Settings(**{**settings.model_dump(), "policies_dir": policies})

    def test_every_demo_token_names_its_principal(self, gateway: Gateway) -> None:
        assert gateway.settings.policies_dir != POLICIES
        assert len(gateway.tokens) > 30
        for principal in gateway.tokens:
            response = gateway.client.get("/v1/me", headers=gateway.auth(principal))
            assert response.status_code == 200, (principal, response.text)
            assert response.json()["principal_id"] == principal


def test_an_app_is_freed_once_its_test_is_over(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    app = create_app(settings, clock=clock, db=database)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    freed = weakref.ref(app)
    del app, client
    forget_endpoints()  # what the gateway fixture does after each test
    gc.collect()
    assert freed() is None
