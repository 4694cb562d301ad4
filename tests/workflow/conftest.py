"""The workflow tests' service-level fixture: the use cases called directly, both backends."""

from __future__ import annotations

import pytest

from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.policy.vocabulary import partner_kinds
from tests.conftest import demo_partners
from tests.helpers.workflow import World, build_world


@pytest.fixture
def world(
    settings: Settings, database: Database, clock: FixedClock, request: pytest.FixtureRequest
) -> World:
    """A context with the demo partners and their callers, on the test's backend."""
    kinds = partner_kinds(settings.policies_dir)
    issued = demo_partners(request, settings, database, clock, kinds)
    return build_world(settings, database, clock, issued)
