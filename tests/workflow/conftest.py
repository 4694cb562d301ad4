"""The workflow tests' service-level fixture: the use cases called directly, both backends."""

from __future__ import annotations

import pytest

from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from tests.helpers.workflow import World, demo_world


@pytest.fixture
def world(
    settings: Settings, database: Database, clock: FixedClock, request: pytest.FixtureRequest
) -> World:
    """A context with the demo partners and their callers, on the test's backend."""
    return demo_world(request, settings, database, clock)
